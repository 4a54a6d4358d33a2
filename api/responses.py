"""JSON bodies the hot routes build themselves, serialised with orjson.

FastAPI would validate a returned dict against the route's ``response_model`` and then dump it again
(about a tenth of the event loop's time at 50 clients, issue 13). The hot routes build exactly that
model's shape already (``api.render``; tests/test_http_layer.py checks every field against the model),
so they hand over bytes; the model stays on the route for the OpenAPI document."""

from __future__ import annotations

import orjson
from starlette.responses import Response


class JSONBytes(Response):
    """An ``application/json`` response of bytes serialised beforehand (e.g. in a request thread)."""

    media_type = "application/json"


def dumps(body: dict) -> bytes:
    """``body`` as JSON bytes (UTF-8, compact; non-string keys and NaN are refused or nulled by orjson)."""
    return orjson.dumps(body)
