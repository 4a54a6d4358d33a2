"""One serialisable settings object for resolution (splink-style): blocking keys, comparisons, thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

BLOCKING_KEYS = ("first_token", "sorted_tokens", "acronym", "prefix4", "token", "phonetic_prefix")


@dataclass(frozen=True)
class ComparisonLevel:
    """One ordered level of a comparison: applies when similarity ≥ ``min_similarity``; adds ``weight`` (log2 m/u)."""

    label: str
    min_similarity: float
    weight: float


@dataclass(frozen=True)
class Comparison:
    """A field compared by ordered levels (first that applies wins); ``else_weight`` when none does."""

    field: str
    levels: tuple[ComparisonLevel, ...]
    else_weight: float
    missing_weight: float = 0.0


def _name_levels() -> tuple[ComparisonLevel, ...]:
    return (
        ComparisonLevel("exact", 1.0, 8.0),
        ComparisonLevel("acronym", 0.999, 6.0),  # similarity 0.999 is reserved for acronym matches
        ComparisonLevel("fuzzy_95", 0.95, 6.0),
        ComparisonLevel("fuzzy_92", 0.92, 5.0),
        ComparisonLevel("fuzzy_85", 0.85, 1.0),
    )


def _exact(name: str, agree: float, disagree: float) -> Comparison:
    return Comparison(name, (ComparisonLevel("exact", 1.0, agree),), disagree)


DEFAULT_COMPARISONS = (
    Comparison("name", _name_levels(), else_weight=-8.0),
    _exact("email_domain", 6.0, -1.0),
    _exact("website", 6.0, -1.0),
    _exact("phone", 5.0, -0.5),
    Comparison("address", (ComparisonLevel("close", 0.9, 3.0),), else_weight=-0.5),
    _exact("parent", 2.0, -0.5),
)


@dataclass(frozen=True)
class ResolutionSettings:
    """Everything that decides which mentions are one entity; ``to_dict``/``from_dict`` round-trip as JSON."""

    blocking_keys: tuple[str, ...] = BLOCKING_KEYS
    comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS
    match_weight: float = 5.0  # total log2 weight at which two mentions are linked
    # Every pair inside a cluster must itself reach this (anti-chaining); look-alike names
    # (compare.look_alike) never share a cluster, so A~B and B~C with A, C look-alikes stay two entities.
    cluster_min_weight: float = 0.0
    # Two spellings one edit apart, each named by at least this many records (text hits count 1/1000) and the
    # rarer at least rival_min_share as often as the commoner, are two names (compare.rival_spellings); 0 = off.
    rival_min_mentions: int = 2
    rival_min_share: float = 0.5
    max_block_size: int = 200  # blocks larger than this are too common to discriminate
    gazetteer_fuzzy_cutoff: float = 92.0
    gazetteer_min_chars: int = 4
    entity_types: tuple[str, ...] = ("organization", "person", "product")

    def __post_init__(self) -> None:
        unknown = [k for k in self.blocking_keys if k not in BLOCKING_KEYS]
        if unknown:
            raise ValueError(f"unknown blocking key(s) {unknown}; choose from {BLOCKING_KEYS}")
        if self.max_block_size < 2:
            raise ValueError(f"max_block_size must be ≥ 2, got {self.max_block_size}")

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ResolutionSettings:
        """Inverse of ``to_dict`` (missing keys take defaults)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "comparisons" in values:
            values["comparisons"] = tuple(
                Comparison(
                    c["field"], tuple(ComparisonLevel(**lv) for lv in c["levels"]),
                    c["else_weight"], c.get("missing_weight", 0.0),
                )
                for c in values["comparisons"]
            )
        for key in ("blocking_keys", "entity_types"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


DEFAULT_SETTINGS = ResolutionSettings()
