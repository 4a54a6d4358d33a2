"""Feedback as evaluation data (``stitch eval feedback``) and as training data (``stitch tune``).

Tuning fits on a deterministic share of the labelled requests and compares against the deployment's
current state on the rest; it applies only if the held-out nDCG@10 improves.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import dataclass, replace

from core import payload as P
from core.models import Principal
from evaluation.metrics import ndcg_at, recall_at
from governance.feedback import LabelledRequest
from governance.tuning import TuningState, entity_resolver, load_state, save_state
from retrieval.context import ContextRequest, Retriever
from retrieval.search import SearchPlan

HELD_OUT_SHARE = 0.3
MIN_GAIN = 0.001  # held-out nDCG@10 must improve by at least this much to apply
# Query entity-match cutoffs tried (rapidfuzz ratio): None keeps the registry's own fuzzy cutoff; each
# higher one drops misspelt matches scoring below it; above 100 only exact names (and acronyms) link.
ENTITY_CUTOFFS = (None, 95.0, 98.0, 101.0)


def _held_out(request_id: str) -> bool:
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) % 1000 < HELD_OUT_SHARE * 1000


def _ranking(retriever: Retriever, request: LabelledRequest) -> list[str]:
    asked = ContextRequest(request.query, Principal(request.principal_id, request.roles))
    hits, _ = retriever.search(asked, limit=50)
    return list(dict.fromkeys(h.payload[P.DOC_ID] for h in hits))


def score(retriever: Retriever, requests: list[LabelledRequest]) -> dict:
    """Mean nDCG@10 and Recall@10 of ``retriever`` on labelled requests (relevant + missing count as 1)."""
    if not requests:
        return {"requests": 0, "ndcg@10": None, "recall@10": None}
    rankings = [(_ranking(retriever, r), r.judgements) for r in requests]
    return {
        "requests": len(requests),
        "ndcg@10": round(sum(ndcg_at(rank, rel, 10) for rank, rel in rankings) / len(rankings), 4),
        "recall@10": round(sum(recall_at(rank, rel, 10) for rank, rel in rankings) / len(rankings), 4),
    }


@dataclass
class _QueryCache:
    """Encodes each query once across the tuning grid."""

    encoder: object

    def __post_init__(self) -> None:
        self._cache: dict[str, object] = {}
        self.name = self.encoder.name
        self.dimension = self.encoder.dimension

    def encode_query(self, text: str):  # noqa: ANN201 - numpy array
        if text not in self._cache:
            self._cache[text] = self.encoder.encode_query(text)
        return self._cache[text]


def _priors(train: list[LabelledRequest], retriever: Retriever) -> dict[str, float]:
    """Per-source prior: the source's share of relevant judgements over its share of all, bounded."""
    judged: dict[str, list[int]] = defaultdict(list)
    for request in train:
        for doc_id, grade in request.judgements.items():
            judged[doc_id.split(":", 1)[0]].append(grade)
    total = [g for grades in judged.values() for g in grades]
    if not total or len(judged) < 2:
        return {}
    base = (sum(total) + 1) / (len(total) + 2)
    return {s: round(min(2.0, max(0.5, ((sum(g) + 1) / (len(g) + 2)) / base)), 3) for s, g in judged.items()}


def _candidates(base: SearchPlan, priors: dict[str, float]):  # noqa: ANN202 - iterator of (plan, priors)
    for fusion, depth, entity_weight, use_priors in itertools.product(
        ("dbsf", "rrf"), (100, 200, 500), (0.5, 1.0, 2.0), (False, True)
    ):
        if use_priors and not priors:
            continue
        yield replace(base, fusion=fusion, prefetch_limit=depth, entity_weight=entity_weight), (priors if use_priors else {})


def _fit_cutoff(cached: Retriever, train: list[LabelledRequest], entities) -> tuple[float | None, dict]:  # noqa: ANN001
    """The query entity-match cutoff with the best training nDCG@10 (ties keep the registry's own)."""
    if entities is None:
        return None, {}
    scores = {c: score(replace(cached, entity_resolver=entity_resolver(entities, TuningState(entity_match_cutoff=c))),
                       train)["ndcg@10"] for c in ENTITY_CUTOFFS}
    best = max(ENTITY_CUTOFFS, key=lambda c: (scores[c], c is None))
    return best, {("registry" if c is None else str(c)): v for c, v in scores.items()}


def tune(retriever: Retriever, requests: list[LabelledRequest], *, tuning_path, apply: bool = True,  # noqa: ANN001
         entities=None) -> dict:  # noqa: ANN001 - the registry's QueryEntityResolver, to refit its match cutoff
    """Fit plan parameters and source priors, then the query entity-match cutoff, on the training share;
    apply only if held-out nDCG@10 improves over the current state."""
    train = [r for r in requests if not _held_out(r.request_id)]
    held = [r for r in requests if _held_out(r.request_id)]
    if not train or not held:
        return {"applied": False, "reason": f"need labelled requests on both sides of the split "
                                            f"(train {len(train)}, held-out {len(held)})"}
    cached = replace(retriever, encoder=_QueryCache(retriever.encoder))
    plan, priors = max(
        _candidates(cached.plan, _priors(train, cached)),
        key=lambda c: score(replace(cached, plan=c[0], source_priors=c[1]), train)["ndcg@10"],
    )
    fitted = replace(cached, plan=plan, source_priors=priors)
    cutoff, cutoff_scores = _fit_cutoff(fitted, train, entities)
    state = TuningState(fusion=plan.fusion, prefetch_limit=plan.prefetch_limit, entity_weight=plan.entity_weight,
                        entity_match_cutoff=cutoff, source_priors=dict(priors), trained_on=len(train))
    plain = replace(fitted, entity_resolver=entities) if entities is not None else fitted
    fitted = replace(fitted, entity_resolver=entity_resolver(entities, state)) if entities is not None else fitted
    before, after = score(cached, held), score(fitted, held)
    # what the cutoff alone bought on the held-out share (the rest fitted as above)
    without = after if cutoff is None else score(plain, held)
    better = after["ndcg@10"] >= before["ndcg@10"] + MIN_GAIN
    state = replace(state, held_out={"before": before["ndcg@10"], "after": after["ndcg@10"], "requests": len(held)})
    if better and apply:
        save_state(state, tuning_path)
    return {"applied": bool(better and apply), "better": better, "train_requests": len(train),
            "held_out": {"before": before, "after": after}, "state": state.__dict__,
            "entity_match": {"cutoff": cutoff, "train_ndcg@10": cutoff_scores,
                             "held_out_ndcg@10": {"registry_cutoff": without["ndcg@10"], "chosen": after["ndcg@10"]}},
            "previous": (load_state(tuning_path).__dict__ if tuning_path.exists() and not (better and apply) else None)}


def run_feedback_eval(services) -> dict:  # noqa: ANN001 - api.services.Services
    """Recall@10 / nDCG@10 of today's retrieval on every labelled request, plus the entity corrections
    (pending, applied, skipped or reverted). Scoring searches, so it needs the store; with nothing labelled
    neither the store (another process may hold it) nor the model is opened."""
    requests = services.feedback.labelled_requests(services.pack_store)
    if requests:
        services.store  # noqa: B018 - wait for the store's lock (saying so) before the model loads
    return {
        **score(services.retriever if requests else None, requests),
        "labels": sum(len(r.judgements) for r in requests),
        "entity_corrections": [c.to_dict() for c in services.feedback.entity_corrections()],
    }


def run_tune(services, *, apply: bool = True, actor: str = "library") -> dict:  # noqa: ANN001 - api.services.Services
    """``stitch tune``: apply pending entity corrections as steward overrides, then fit on the labels,
    report before/after on the held-out share and apply only if better (``apply=False``: report only)."""
    from evaluation.corrections import apply_corrections

    corrections = apply_corrections(
        services.feedback, services.entity_registry.store, services.store, services.pack_store,
        settings=services.settings, actor=actor, dry_run=not apply)
    requests = services.feedback.labelled_requests(services.pack_store)
    result = tune(services.retriever, requests, tuning_path=services.settings.tuning_path, apply=apply,
                  entities=services.entity_registry)
    # an applied state is served from the next request on: Services.retriever rebuilds when the file changes
    return {**result, "entity_corrections": corrections}


def run_tune_anywhere(settings, *, apply: bool, actor: str) -> dict:  # noqa: ANN001 - core.config.Settings
    """``stitch tune fit``: while ``stitch serve`` holds the embedded store, the server fits and applies
    (``POST /v1/tune`` with its local key) and serves the result at once; otherwise this process does."""
    from api.serving import forward_post, running_server
    from api.services import Services

    if running_server(settings) is not None:
        return forward_post(settings, "/v1/tune", {"dry_run": not apply}, timeout=3600)
    return run_tune(Services(settings), apply=apply, actor=actor)


def revert_anywhere(settings, feedback_id: int, *, actor: str) -> dict:  # noqa: ANN001
    """``stitch tune revert``: undo one applied entity correction, in the server if one holds the store."""
    from api.serving import forward_post, running_server
    from api.services import Services
    from evaluation.corrections import revert_correction

    if running_server(settings) is not None:
        return forward_post(settings, f"/v1/tune/corrections/{feedback_id}/revert", {})
    services = Services(settings)
    return revert_correction(services.feedback, services.entity_registry.store, services.store, feedback_id,
                             settings=settings, actor=actor)
