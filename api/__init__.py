"""Every way into Stitch: the HTTP API (FastAPI) and the ``stitch`` CLI."""
