"""What feedback taught the pipeline, as one portable JSON file (it belongs to the organisation,
not to one deployment): search-plan parameters, per-source priors and the query entity-match cutoff."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import ConfigurationError

FORMAT = "stitch-tuning/1"


@dataclass(frozen=True)
class TuningState:
    """Learned retrieval parameters; ``None`` fields keep the deployment's settings."""

    fusion: str | None = None
    prefetch_limit: int | None = None
    entity_weight: float | None = None
    entity_match_cutoff: float | None = None  # query names: misspelt matches scoring below this are dropped
    source_priors: dict[str, float] = field(default_factory=dict)  # score multiplier per source
    trained_on: int = 0  # labelled requests used to fit
    held_out: dict = field(default_factory=dict)  # {"before": nDCG@10, "after": nDCG@10, "requests": n}

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> "TuningState":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise ConfigurationError(f"{where}: not a Stitch tuning file (expected format {FORMAT!r})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"{where}: unknown key(s) {', '.join(unknown)}")
        priors = data.get("source_priors", {})
        if not isinstance(priors, dict) or not all(isinstance(v, (int, float)) and 0 < v <= 10 for v in priors.values()):
            raise ConfigurationError(f"{where}: source_priors must map source names to numbers in (0, 10]")
        cutoff = data.get("entity_match_cutoff")
        if cutoff is not None and (not isinstance(cutoff, (int, float)) or not 0 < cutoff <= 101):
            raise ConfigurationError(f"{where}: entity_match_cutoff must be a number in (0, 101], not {cutoff!r}")
        if data.get("fusion") not in (None, "rrf", "dbsf"):
            raise ConfigurationError(f"{where}: fusion must be 'rrf' or 'dbsf', not {data['fusion']!r}")
        return cls(**data)


@dataclass(frozen=True)
class StricterEntityMatch:
    """The query-time entity resolver with the learned fuzzy-match cutoff (``core.entities.QueryEntityResolver``)."""

    inner: object
    cutoff: float

    def entities_in_query(self, text: str, *, acl_tokens):  # noqa: ANN001, ANN201 - list[EntityRef]
        return self.inner.entities_in_query(text, acl_tokens=acl_tokens, fuzzy_cutoff=self.cutoff)


def entity_resolver(base, state: TuningState | None):  # noqa: ANN001, ANN201
    """``base`` as tuning left it: with the learned cutoff, if any."""
    if base is None or state is None or state.entity_match_cutoff is None:
        return base
    return StricterEntityMatch(base, state.entity_match_cutoff)


def load_state(path: Path) -> TuningState | None:
    """The tuning file at ``path``, or None when there is none."""
    if not path.exists():
        return None
    return TuningState.from_json(path.read_text(encoding="utf-8"), where=str(path.name))


def save_state(state: TuningState, path: Path) -> None:
    """Write ``state`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json(), encoding="utf-8")
    tmp.replace(path)
