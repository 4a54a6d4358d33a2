"""The OpenAPI schema with Stitch's two credentials declared, so generated clients send them.

Every ``/v1`` route and ``/metrics`` take the service key (``Authorization: Bearer stk_…``). The routes
that read on behalf of a principal (a ``principal`` in the body or ``principal_id`` in the query) also
take the end user's signed token in the configured header (``Settings.user_token_header``): either the
key alone, or the key and the token. The header name is configurable, so the schemes are added when the
schema is built rather than declared as route dependencies.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

SERVICE_KEY, USER_TOKEN = "serviceKey", "userToken"


def install_openapi(app: FastAPI, user_token_header: str) -> None:
    """Replace ``app.openapi`` by a builder that adds the security schemes (built once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            _declare_credentials(schema, user_token_header)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _declare_credentials(schema: dict[str, Any], header: str) -> None:
    schema.setdefault("components", {})["securitySchemes"] = {
        SERVICE_KEY: {"type": "http", "scheme": "bearer",
                      "description": "A Stitch API key (`stitch keys create`); its scopes decide the routes."},
        USER_TOKEN: {"type": "apiKey", "in": "header", "name": header,
                     "description": "Optional: the end user's signed JWT. With it the principal is the "
                                    "token's user, not the asserted one."},
    }
    for path, operations in schema.get("paths", {}).items():
        if not (path.startswith("/v1/") or path == "/metrics"):
            continue
        for operation in operations.values():
            key_only = {SERVICE_KEY: []}
            reads_for_principal = _names_a_principal(operation, schema)
            operation["security"] = [key_only, {SERVICE_KEY: [], USER_TOKEN: []}] if reads_for_principal else [key_only]


def _names_a_principal(operation: dict[str, Any], schema: dict[str, Any]) -> bool:
    if any(p.get("name") == "principal_id" for p in operation.get("parameters", [])):
        return True
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    model = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {}) if ref else body
    return "principal" in model.get("properties", {})
