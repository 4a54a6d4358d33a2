"""Randomised principal × query × endpoint probes against the real app, and the endpoint registry.

An endpoint is one entry of ``ENDPOINTS``: a weight and a ``send(ctx, principal, rng) -> Outcome``.
The judge scans every outcome the same way; an endpoint adds its own checks (hidden = missing 404s,
counts, refusals) by returning extra leaks. Adding a transport (MCP tools) is one more entry.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from evaluation.leaks_corpus import ROLES, USERS
from evaluation.leaks_identity import TestIdentityProvider, UserToken
from evaluation.leaks_judge import Judge, Leak
from evaluation.leaks_oracle import KeyGrant

MISSING_DOC = "wiki:no-such-page-0000.md"
MISSING_ENTITY = "ent_0000000000000000"
ODD_ROLES = ("public", "intern", "sales, exec", "exec public", "user:dana", "")
_JSON = {"Content-Type": "application/json"}
BAD_IDS = ("../../etc/passwd", "wiki:" + "A" * 300, "%00", "wiki:drafts/../public/x.md", "crm:C-90%", "ent_' OR 1=1 --")


@dataclass(frozen=True)
class ProbeKey:
    name: str
    secret: str
    grant: KeyGrant
    scope: str = "context"


@dataclass(frozen=True)
class Principal:
    key: ProbeKey
    id: str | None  # None: no particular user (the field is left out)
    roles: tuple[str, ...]
    user: UserToken | None = None  # a verified end user's token sent along (evaluation.leaks_identity)

    @property
    def tokens(self) -> frozenset[str]:
        """What the request may be answered with (the oracle's legitimate principal)."""
        if self.user is None:
            return self.key.grant.legit_tokens(self.id, list(self.roles))
        if self.user.roles is None:
            return frozenset({"public"})
        granted = [r for r in (self.roles or self.user.roles) if r in self.user.roles]
        return frozenset({"public", f"user:{self.user.subject}", *(f"role:{r}" for r in granted)})

    def must_refuse(self) -> bool:
        if self.user is None:
            return self.key.grant.must_refuse(self.id, list(self.roles))
        renamed = self.id is not None and self.id != self.user.subject
        return self.user.roles is None or renamed or any(r not in self.user.roles for r in self.roles)

    @property
    def headers(self) -> dict:
        user = {self.user.header: self.user.token} if self.user else {}
        return {"Authorization": f"Bearer {self.key.secret}", **user}

    @property
    def claimed(self) -> frozenset[str]:
        """What the caller asked to be: every asserted role and its id, vouched for or not."""
        user = {f"user:{i}" for i in (self.id, self.user and self.user.subject) if i}
        token_roles = self.user.roles or () if self.user else ()
        return frozenset({"public", *user, *(f"role:{r}" for r in (*self.roles, *token_roles))})

    def label(self) -> str:
        user = f"[jwt {self.user.subject} {self.user.kind}]" if self.user else ""
        return f"{self.key.name}{user}:{self.id or '-'}:{'+'.join(self.roles) or '-'}"

    def params(self) -> dict:
        """The assertion as query parameters (``?principal_id=…&role=…``)."""
        return {"role": list(self.roles), **({"principal_id": self.id} if self.id is not None else {})}

    def json(self) -> dict:
        """The assertion as a body's ``principal`` object."""
        return {"roles": list(self.roles), **({"id": self.id} if self.id is not None else {})}


@dataclass
class Outcome:
    """One probe's response, what the caller sent itself (exempt from the scan) and endpoint-specific leaks."""

    endpoint: str
    request: str
    status: int
    text: str
    tokens: frozenset[str]
    exempt: tuple[str, ...] = ()
    claimed: frozenset[str] = frozenset()
    leaks: list[tuple[str, str, str]] = field(default_factory=list)
    refused_expected: bool = False
    raw_shown: int = 0  # redacted values a reader allowed to see them was shown raw
    raw_withheld: list[str] = field(default_factory=list)  # ... and those it was not (over-redaction)


def check_raw_values(ctx: "ProbeContext", out: Outcome, doc_id: str) -> None:
    """A served document shows every redacted value its reader may see raw (the other half of redaction)."""
    for value in ctx.judge.redacted:
        if value.doc_id == doc_id and ctx.judge.may_see_raw(value, out.tokens):
            if value.value in out.text:
                out.raw_shown += 1
            else:
                out.raw_withheld.append(f"{value.rule} value of {doc_id}")


@dataclass
class ProbeContext:
    """Everything a probe needs: the client, the judge, keys, queries, targets, jobs."""

    client: object  # fastapi.testclient.TestClient
    judge: Judge
    keys: list[ProbeKey]
    ingest_keys: list[ProbeKey]
    queries: list[str]
    doc_targets: list[str]
    entity_targets: list[str]
    job_ids: dict[str, str] = field(default_factory=dict)  # job id -> ingest key name that submitted it
    missing_bodies: dict[tuple, str] = field(default_factory=dict)
    bad_ingest_bodies: list[dict] = field(default_factory=list)
    metrics_key: ProbeKey | None = None  # a key with the metrics scope, where that scope exists
    idp: TestIdentityProvider | None = None  # verified end users, where Settings can verify them
    forwarder: ProbeKey | None = None  # the service key user tokens ride along
    request_ids: list[str] = field(default_factory=list)  # context packs served so far (replay, feedback)


def random_principal(ctx: ProbeContext, rng: random.Random) -> Principal:
    if ctx.idp and ctx.forwarder and rng.random() < 0.15:
        return _verified_principal(ctx, rng)
    key = rng.choice(ctx.keys)
    allowed = ROLES if "*" in key.grant.roles else key.grant.roles
    pool = list(allowed) if rng.random() < 0.75 else list(ROLES)
    roles = rng.sample(pool, k=min(len(pool), rng.randint(0, 3)))
    if rng.random() < 0.08:
        roles.append(rng.choice(ODD_ROLES))
    pid = rng.choice([*USERS, *USERS, "alice", "mallory", f"u{rng.randint(0, 999)}", None, None])
    return Principal(key, pid, tuple(dict.fromkeys(roles)))


def _verified_principal(ctx: ProbeContext, rng: random.Random) -> Principal:
    """A signed user token (sometimes a bad one); the body repeats, narrows, renames or widens it now and then."""
    user = ctx.idp.token(rng)
    pid = rng.choices([None, user.subject, rng.choice(USERS)], [6, 3, 1])[0]
    mapped = list(user.roles or ())
    roles = rng.choices([[], rng.sample(mapped, k=min(1, len(mapped))), [rng.choice(ROLES)]], [6, 3, 1])[0]
    return Principal(ctx.forwarder, pid, tuple(roles), user)


def _query(ctx: ProbeContext, rng: random.Random) -> str:
    return rng.choice(ctx.queries)


def _body(p: Principal, query: str, rng: random.Random) -> dict:
    return {"query": query, "principal": p.json(),
            "top_k": rng.choice([1, 3, 8, 20]), "max_tokens": rng.choice([50, 500, 2000, 6000])}


def _outcome(endpoint: str, p: Principal, request: str, response, **kw) -> Outcome:  # noqa: ANN001
    out = Outcome(endpoint, f"{p.label()} {request}", response.status_code, response.text, p.tokens,
                  claimed=p.claimed, refused_expected=p.must_refuse(), **kw)
    if p.user and p.user.roles is None and response.status_code == 200:
        out.leaks.append(("jwt", "status", f"a {p.user.kind} user token was accepted"))
    return out


def _post_retrieval(path: str) -> Callable:
    def send(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
        query = _query(ctx, rng)
        body = _body(p, query, rng)
        response = ctx.client.post(path, json=body, headers=p.headers)
        out = _outcome(path, p, json.dumps(query), response)
        if response.status_code == 200 and path == "/v1/context":
            pack = response.json()
            ctx.request_ids.append(pack["request_id"])
            if pack["usage"]["passages"] != len(pack["passages"]) or len(pack["passages"]) > body["top_k"]:
                out.leaks.append(("baseline", "count", f"usage.passages={pack['usage']['passages']}"))
            out.leaks += _entity_refs(ctx, pack.get("entities", []), p)
        return out
    return send


def _entity_refs(ctx: ProbeContext, refs: list[dict], p: Principal) -> list[tuple[str, str, str]]:
    """Entities in a pack or a list: each must have a visible document, and no more documents than visible."""
    found = []
    for ref in refs:
        entity_id = ref.get("entity_id", "")
        visible = ctx.judge.entity_visible_docs(entity_id, p.tokens)
        cls = ctx.judge.entity_class(entity_id, p.tokens, p.claimed)
        if entity_id not in ctx.judge.entities.docs:
            found.append((cls, "entity_id", entity_id))  # unknown to the steward view: cannot be explained
        elif "documents" in ref and ref["documents"] > len(visible):
            found.append((cls, "count", f"{entity_id}: documents={ref['documents']} > {len(visible)} visible"))
    return found


def _normalised_error(text: str, target: str) -> str:
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return text
    return json.dumps({k: str(v).replace(target, "<id>") for k, v in error.items() if k != "request_id"})


def _hidden_like_missing(ctx: ProbeContext, p: Principal, url: str, missing: str, target: str,
                         response, cls: str) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """A hidden target must answer exactly like a target that does not exist."""
    if response.status_code == 200:
        return [(cls, "status", f"200 for hidden {target}")]
    cache_key = (p.key.name, url, p.id, p.roles, p.user)
    if cache_key not in ctx.missing_bodies:
        params = p.params()
        ctx.missing_bodies[cache_key] = ctx.client.get(f"{url}/{missing}", params=params, headers=p.headers).text
    if _normalised_error(response.text, target) != _normalised_error(ctx.missing_bodies[cache_key], missing):
        return [(cls, "error_text", f"hidden {target} answers unlike a missing id ({response.status_code})")]
    return []


def send_document(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    target = rng.choice(ctx.doc_targets)
    params = p.params()
    response = ctx.client.get(f"/v1/documents/{target}", params=params, headers=p.headers)
    out = _outcome("/v1/documents/{id}", p, target, response, exempt=(target,))
    refused = out.refused_expected and response.status_code in (401, 403, 422)
    if not refused and target not in ctx.judge.visible(p.tokens):
        out.leaks += _hidden_like_missing(ctx, p, "/v1/documents", MISSING_DOC, target, response,
                                          ctx.judge.doc_class(target))
    elif response.status_code == 200:
        check_raw_values(ctx, out, target)
    return out


def send_entity_list(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    q = _query(ctx, rng) if rng.random() < 0.5 else rng.choice([*ctx.judge.plan.entity_names, "", "a", "cap"])
    q = q[: rng.randint(3, 40)] if q and rng.random() < 0.3 else q
    params = {"q": q, **p.params(), "limit": 200}
    response = ctx.client.get("/v1/entities", params=params, headers=p.headers)
    out = _outcome("/v1/entities", p, json.dumps(q), response)
    if response.status_code == 200:
        out.leaks += _entity_refs(ctx, response.json().get("entities", []), p)
    return out


def send_entity_show(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    target = rng.choice(ctx.entity_targets)
    params = p.params()
    response = ctx.client.get(f"/v1/entities/{target}", params=params, headers=p.headers)
    out = _outcome("/v1/entities/{id}", p, target, response, exempt=(target,))
    if out.refused_expected and response.status_code in (401, 403, 422):
        return out
    if not ctx.judge.entity_visible_docs(target, p.tokens):
        out.leaks += _hidden_like_missing(ctx, p, "/v1/entities", MISSING_ENTITY, target, response,
                                          ctx.judge.entity_class(target, p.tokens, p.claimed))
    elif response.status_code == 200:
        out.leaks += _entity_refs(ctx, [response.json()], p)
    return out


def send_bad_request(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    """Error bodies: bad ids, malformed bodies, foreign roles; none may carry anything hidden."""
    choice = rng.randrange(4)
    params = p.params()
    if choice == 0:
        bad = rng.choice(BAD_IDS)
        response = ctx.client.get(f"/v1/documents/{bad}", params=params, headers=p.headers)
    elif choice == 1:
        bad = rng.choice(BAD_IDS)
        response = ctx.client.get(f"/v1/entities/{bad}", params=params, headers=p.headers)
    elif choice == 2:
        bad = json.dumps({"query": _query(ctx, rng), "principal": {**p.json(), "roles": "sales"}, "top_k": -1})
        response = ctx.client.post("/v1/context", content=bad, headers={**p.headers, **_JSON})
    else:
        foreign = rng.choice([r for r in ROLES if r not in p.key.grant.roles] or ["exec public", "sales,exec"])
        p = replace(p, roles=tuple(dict.fromkeys((*p.roles, foreign))))  # judged as what was asserted
        bad = json.dumps({"query": _query(ctx, rng), "principal": p.json()})
        response = ctx.client.post("/v1/search", content=bad, headers={**p.headers, **_JSON})
    return _outcome("errors", p, bad[:120], response, exempt=(bad,))


def send_metrics(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    key = ctx.metrics_key if ctx.metrics_key and rng.random() < 0.6 else p.key
    headers = {"Authorization": f"Bearer {key.secret}"} if rng.random() < 0.8 else {}
    response = ctx.client.get("/metrics", headers=headers)
    return Outcome("/metrics", "GET /metrics", response.status_code, response.text, frozenset({"public"}))


def send_job(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    """Job reports: only the key that submitted a job may read it; bad ingest bodies quote no file."""
    reader = rng.choice(ctx.ingest_keys + [p.key])
    if ctx.bad_ingest_bodies and rng.random() < 0.4:
        body = rng.choice(ctx.bad_ingest_bodies)
        response = ctx.client.post("/v1/ingest/jobs", json=body, headers={"Authorization": f"Bearer {reader.secret}"})
        out = Outcome("/v1/ingest/jobs", f"{reader.name} POST {json.dumps(body)[:120]}", response.status_code,
                      response.text, frozenset({"public"}), exempt=tuple(_strings(body)))
        if response.status_code == 202:
            out.leaks.append(("confinement", "status", f"accepted {json.dumps(body)[:120]}"))
        return out
    job_id = rng.choice(sorted(ctx.job_ids) or ["job_" + "0" * 32])
    response = ctx.client.get(f"/v1/ingest/jobs/{job_id}", headers={"Authorization": f"Bearer {reader.secret}"})
    out = Outcome("/v1/ingest/jobs/{id}", f"{reader.name} GET {job_id}", response.status_code, response.text,
                  frozenset({"public"}), exempt=(job_id,))
    owner = ctx.job_ids.get(job_id)
    if response.status_code == 200 and owner != reader.name and reader.grant.roles != ("admin",):
        out.leaks.append(("jobs", "status", f"{reader.name} read the job of {owner}"))
    elif response.status_code == 200:
        out.text = ""  # the submitter reads its own report: its own sources' file names are its own business
    return out


def send_replay(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    """A context key must not read what another request returned (``GET /v1/context/{request_id}``)."""
    request_id = rng.choice(ctx.request_ids or ["0" * 32])
    response = ctx.client.get(f"/v1/context/{request_id}", headers=p.headers)
    out = _outcome("/v1/context/{request_id}", p, request_id, response, exempt=(request_id,))
    if response.status_code == 200:
        out.leaks.append(("replay", "status", f"{p.key.name} (scope {p.key.scope}) read pack {request_id}"))
    return out


def send_feedback(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    """Feedback naming a hidden document must answer as it does for a document that does not exist."""
    request_id = rng.choice(ctx.request_ids or ["0" * 32])
    target = rng.choice(ctx.doc_targets)

    def post(doc_id: str):  # noqa: ANN202
        body = {"request_id": request_id, "principal": p.json(),
                "labels": [{"doc_id": doc_id, "label": rng.choice(["missing", "relevant"])}]}
        return ctx.client.post("/v1/feedback", json=body, headers=p.headers)

    response = post(target)
    out = _outcome("/v1/feedback", p, f"{request_id} {target}", response, exempt=(request_id, target))
    if target not in ctx.judge.visible(p.tokens) and not out.refused_expected:
        missing = post(MISSING_DOC)
        if (response.status_code, _normalised_error(response.text, target)) != (
                missing.status_code, _normalised_error(missing.text, MISSING_DOC)):
            out.leaks.append((ctx.judge.doc_class(target), "error_text",
                              f"feedback on hidden {target} answers unlike a missing id ({response.status_code})"))
    return out


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


# -- MCP: the same operations as tools over /mcp (JSON-RPC, stateless). A tool error is mapped back to the
#    status its code names, so refusals and hidden = missing are judged exactly as for the REST routes.
_MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
_MCP_STATUS = {"unauthenticated": 401, "forbidden": 403, "not_found": 404, "invalid_input": 422}


@dataclass(frozen=True)
class ToolAnswer:
    status_code: int
    text: str


def call_tool(ctx: ProbeContext, p: Principal, tool: str, arguments: dict) -> ToolAnswer:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    response = ctx.client.post("/mcp", json=body, headers={**p.headers, **_MCP_HEADERS})
    if response.status_code != 200:
        return ToolAnswer(response.status_code, response.text)
    reply = response.json()
    result = reply.get("result") or {}
    if "error" in reply or result.get("isError"):
        text = " ".join(c.get("text", "") for c in result.get("content", [])) or json.dumps(reply.get("error"))
        text = text.removeprefix(f"Error executing tool {tool}: ")
        return ToolAnswer(_MCP_STATUS.get(text.split(":", 1)[0], 422), text)
    return ToolAnswer(200, json.dumps(result.get("structuredContent")))


def _mcp_retrieval(tool: str) -> Callable:
    def send(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
        query = _query(ctx, rng)
        arguments = {"query": query, "principal_id": p.id, "roles": list(p.roles), "top_k": rng.choice([1, 3, 8, 20])}
        if tool == "get_context":
            arguments["max_tokens"] = rng.choice([50, 500, 2000, 6000])
        answer = call_tool(ctx, p, tool, arguments)
        out = _outcome(f"mcp:{tool}", p, json.dumps(query), answer)
        if answer.status_code == 200 and tool == "get_context":
            out.leaks += _entity_refs(ctx, json.loads(answer.text).get("entities", []), p)
        return out
    return send


def _mcp_hidden_like_missing(ctx: ProbeContext, p: Principal, tool: str, field_name: str, missing: str,
                             target: str, answer: ToolAnswer, cls: str) -> list[tuple[str, str, str]]:
    if answer.status_code == 200:
        return [(cls, "status", f"200 for hidden {target} (mcp:{tool})")]
    missed = call_tool(ctx, p, tool, {field_name: missing, "principal_id": p.id, "roles": list(p.roles)})
    if answer.text.replace(target, "<id>") != missed.text.replace(missing, "<id>"):
        return [(cls, "error_text", f"hidden {target} answers unlike a missing id (mcp:{tool})")]
    return []


def send_mcp_document(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    target = rng.choice(ctx.doc_targets)
    answer = call_tool(ctx, p, "read_document", {"doc_id": target, "principal_id": p.id, "roles": list(p.roles)})
    out = _outcome("mcp:read_document", p, target, answer, exempt=(target,))
    refused = out.refused_expected and answer.status_code in (403, 422)
    if not refused and target not in ctx.judge.visible(p.tokens):
        out.leaks += _mcp_hidden_like_missing(ctx, p, "read_document", "doc_id", MISSING_DOC, target, answer,
                                              ctx.judge.doc_class(target))
    elif answer.status_code == 200:
        check_raw_values(ctx, out, target)
    return out


def send_mcp_entity_list(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    q = _query(ctx, rng) if rng.random() < 0.5 else rng.choice([*ctx.judge.plan.entity_names, "", "a", "cap"])
    q = q[:200]
    answer = call_tool(ctx, p, "find_entities", {"query": q, "principal_id": p.id, "roles": list(p.roles), "limit": 200})
    out = _outcome("mcp:find_entities", p, json.dumps(q), answer)
    if answer.status_code == 200:
        out.leaks += _entity_refs(ctx, json.loads(answer.text).get("entities", []), p)
    return out


def send_mcp_entity_show(ctx: ProbeContext, p: Principal, rng: random.Random) -> Outcome:
    target = rng.choice(ctx.entity_targets)
    answer = call_tool(ctx, p, "show_entity", {"entity_id": target, "principal_id": p.id, "roles": list(p.roles)})
    out = _outcome("mcp:show_entity", p, target, answer, exempt=(target,))
    if out.refused_expected and answer.status_code in (403, 422):
        return out
    if not ctx.judge.entity_visible_docs(target, p.tokens):
        out.leaks += _mcp_hidden_like_missing(ctx, p, "show_entity", "entity_id", MISSING_ENTITY, target, answer,
                                              ctx.judge.entity_class(target, p.tokens, p.claimed))
    elif answer.status_code == 200:
        out.leaks += _entity_refs(ctx, [json.loads(answer.text)], p)
    return out


@dataclass(frozen=True)
class Endpoint:
    weight: float
    send: Callable[[ProbeContext, Principal, random.Random], Outcome]


ENDPOINTS: dict[str, Endpoint] = {
    "context": Endpoint(30, _post_retrieval("/v1/context")),
    "search": Endpoint(24, _post_retrieval("/v1/search")),
    "documents": Endpoint(16, send_document),
    "entities.list": Endpoint(10, send_entity_list),
    "entities.show": Endpoint(8, send_entity_show),
    "errors": Endpoint(7, send_bad_request),
    "jobs": Endpoint(3, send_job),
    "replay": Endpoint(2, send_replay),
    "feedback": Endpoint(3, send_feedback),
    "metrics": Endpoint(2, send_metrics),
    "mcp.context": Endpoint(8, _mcp_retrieval("get_context")),
    "mcp.search": Endpoint(5, _mcp_retrieval("search")),
    "mcp.documents": Endpoint(5, send_mcp_document),
    "mcp.entities.list": Endpoint(3, send_mcp_entity_list),
    "mcp.entities.show": Endpoint(3, send_mcp_entity_show),
}


def judge_outcome(ctx: ProbeContext, out: Outcome) -> list[Leak]:
    found = list(out.leaks)
    if out.status < 500 and out.text:
        found += ctx.judge.scan(out.text, out.tokens, claimed=out.claimed, exempt=out.exempt)
    elif out.status >= 500:
        found.append(("baseline", "status", f"{out.status}: {out.text[:200]}"))
    return [Leak(cls, out.endpoint, kind, item, out.request.split(" ", 1)[0], out.request)
            for cls, kind, item in dict.fromkeys(found)]


def run_probes(ctx: ProbeContext, n: int, *, seed: int, endpoints: dict[str, Endpoint] = ENDPOINTS):
    """``n`` random probes; yields (endpoint name, outcome, leaks) per probe."""
    rng = random.Random(seed)
    names = list(endpoints)
    weights = [endpoints[name].weight for name in names]
    for _ in range(n):
        name = rng.choices(names, weights)[0]
        principal = random_principal(ctx, rng)
        outcome = endpoints[name].send(ctx, principal, rng)
        yield name, outcome, judge_outcome(ctx, outcome)
