"""A small typed client for the Stitch REST API (httpx): timeouts, retries with backoff on 429/503 and
connection failures (honouring ``Retry-After``), and the error model mapped to exceptions."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from typing import Any

import httpx

from stitch_client.errors import TransportError, UnavailableError, error_for
from stitch_client.models import ContextPack, Document, Entity, SearchHit, build

RETRY_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class StitchClient:
    """``StitchClient("http://127.0.0.1:8000", "stk_…").context("…", principal_id="alice", roles=["sales"])``.

    Every call is read-only on the server, so a refused (429/503) or unreachable request is retried up to
    ``max_retries`` times: after ``Retry-After`` if the server sent one, else after exponential backoff
    with jitter (``backoff`` · 2^attempt, capped at ``max_backoff``).
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, max_retries: int = 3, backoff: float = 0.5,
        max_backoff: float = 8.0, transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (stitch keys create --scope context --role …)")
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}", "User-Agent": "stitch-client"})
        self.max_retries, self.backoff, self.max_backoff, self._sleep = max_retries, backoff, max_backoff, sleep

    def __enter__(self) -> StitchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def context(
        self, query: str, *, principal_id: str, roles: Sequence[str] = (), top_k: int = 8, max_tokens: int = 2000,
        sources: Sequence[str] = (), entity_ids: Sequence[str] = (), updated_after: date | str | None = None,
    ) -> ContextPack:
        """``POST /v1/context``: a token-budgeted, cited context pack of what the principal may see."""
        body = self._body(query, principal_id, roles, top_k, max_tokens, sources, entity_ids, updated_after)
        return ContextPack.from_json(self._request("POST", "/v1/context", json=body))

    def search(
        self, query: str, *, principal_id: str, roles: Sequence[str] = (), top_k: int = 10,
        sources: Sequence[str] = (), entity_ids: Sequence[str] = (), updated_after: date | str | None = None,
    ) -> list[SearchHit]:
        """``POST /v1/search``: ranked chunk hits."""
        body = self._body(query, principal_id, roles, top_k, None, sources, entity_ids, updated_after)
        return [build(SearchHit, h) for h in self._request("POST", "/v1/search", json=body)["hits"]]

    def document(self, doc_id: str, *, principal_id: str, roles: Sequence[str] = ()) -> Document:
        """``GET /v1/documents/{doc_id}``: a cited document's text (NotFoundError if hidden or missing)."""
        params = {"principal_id": principal_id, "role": list(roles)}
        return build(Document, self._request("GET", f"/v1/documents/{doc_id}", params=params))

    def entities(self, query: str = "", *, principal_id: str, roles: Sequence[str] = (), limit: int = 20) -> list[Entity]:
        """``GET /v1/entities``: entities whose visible aliases contain ``query``."""
        params = {"q": query, "principal_id": principal_id, "role": list(roles), "limit": limit}
        return [build(Entity, e) for e in self._request("GET", "/v1/entities", params=params)["entities"]]

    def entity(self, entity_id: str, *, principal_id: str, roles: Sequence[str] = ()) -> Entity:
        """``GET /v1/entities/{id}``: one entity through the documents the principal may see."""
        params = {"principal_id": principal_id, "role": list(roles)}
        return build(Entity, self._request("GET", f"/v1/entities/{entity_id}", params=params))

    @staticmethod
    def _body(query, principal_id, roles, top_k, max_tokens, sources, entity_ids, updated_after) -> dict:  # noqa: ANN001
        body: dict[str, Any] = {"query": query, "principal": {"id": principal_id, "roles": list(roles)}, "top_k": top_k,
                                "filters": {"sources": list(sources), "entity_ids": list(entity_ids)}}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if updated_after is not None:
            body["filters"]["updated_after"] = updated_after.isoformat() if isinstance(updated_after, date | datetime) \
                else str(updated_after)
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> dict:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise TransportError(f"{method} {path}: {exc}") from exc
                self._sleep(self._delay(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self._sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            return self._json(response)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        told = retry_after_seconds(retry_after)
        if told is not None:
            return min(told, self.max_backoff * 4)  # trust the server, within reason
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    @staticmethod
    def _json(response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = error_for(response.status_code, body)
            if isinstance(error, UnavailableError) and not error.message.startswith("HTTP"):
                error.message = f"{error.message} (gave up after retries)"
            raise error
        return body
