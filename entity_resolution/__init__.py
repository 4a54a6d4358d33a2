"""Entity resolution across systems: mentions → normalise → block → compare → cluster → registry.

Public entry points: ``entity_resolution.linker.linker_for(settings)`` (ingest's EntityLinker and
retrieval's QueryEntityResolver), ``entity_resolution.resolve.resolve_records`` (batch resolution),
``entity_resolution.registry.EntityRegistry`` (SQLite, steward overrides).
"""


def linker_for(settings):  # noqa: ANN001, ANN201 - lazy re-export keeps imports light
    """The registry-backed EntityLinker / QueryEntityResolver for ``settings``."""
    from entity_resolution.linker import linker_for as _linker_for

    return _linker_for(settings)
