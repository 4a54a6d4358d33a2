"""The one Settings class: ``STITCH_*`` environment variables, then ``stitch.toml``, then defaults.

Nothing else in Stitch reads the environment. Build it with ``get_settings()`` (cached) or pass a
``Settings`` explicitly (tests, scratch evaluations).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class Settings(BaseSettings):
    """Runtime configuration of one Stitch deployment."""

    model_config = SettingsConfigDict(
        env_prefix="STITCH_", toml_file="stitch.toml", extra="forbid", frozen=True
    )

    data_dir: Path = Field(Path(".stitch"), description="embedded Qdrant, ledger, registry, audit log")
    qdrant_url: str | None = Field(None, description="unset: embedded engine; set: Qdrant server/cluster")
    qdrant_api_key: str | None = Field(None, description="API key of the Qdrant server")
    collection: str = Field("stitch", description="Qdrant collection (and embedded shard directory) name")
    shard_number: int = Field(1, ge=1, description="server/cluster only")
    replication_factor: int = Field(1, ge=1, description="server/cluster only")
    embedding_model: str | None = Field(None, description="local path; unset: packaged all-MiniLM-L6-v2")
    encoder_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8", description="onnx-int8 (default; same SciFact quality as torch, ~2x faster), onnx, torch"
    )
    reranker_model: str | None = Field(None, description="local CrossEncoder path; unset: no rerank")
    api_keys_file: Path | None = Field(None, description="hashed API keys; unset: `$STITCH_DATA_DIR/api_keys.json`")
    # Chunking: the embedder's window is 256 tokens including [CLS]/[SEP].
    chunk_max_tokens: int = Field(254, ge=32, le=254, description="chunk size bound, in embedder tokens")
    chunk_overlap_tokens: int = Field(32, ge=0, le=128, description="sentence overlap when a paragraph is split")
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1, description="larger input files fail with that reason")
    embed_batch_size: int = Field(32, ge=1, description="passages per encoder batch at ingest")
    # Retrieval (tuned on SciFact train queries; docs/retrieval.md).
    fusion: Literal["rrf", "dbsf"] = Field("dbsf", description="how dense and BM25 prefetches are fused")
    prefetch_limit: int = Field(
        500, ge=1, description="candidates per prefetch (dense, BM25) before fusion; 500 was best on SciFact train "
        "(nDCG@10 0.7390 at 100, 0.7429 at 500, 0.7425 at 1000; DBSF normalises each list by its own spread, "
        "which a deeper list estimates better)")
    rrf_k: int = Field(2, ge=1, description="RRF constant when fusion = rrf")
    hnsw_m: int = Field(
        32, ge=4, le=128, description="links per point of the dense HNSW graph, fixed when the collection is created "
        "(an existing collection keeps its graph: re-ingest into a new one to change it); at 1M chunks the engine's "
        "16 left filtered dense recall@10 at 0.985, 32 reaches 1.000 at every ACL selectivity for 2.7x the build CPU "
        "(docs/serving.md §5)")
    hnsw_ef_construct: int = Field(
        200, ge=8, le=2048, description="candidate beam while the HNSW graph is built, fixed when the collection "
        "is created like hnsw_m (engine default 100)")
    default_top_k: int = Field(8, ge=1, le=100, description="passages per context pack unless the request says")
    default_max_tokens: int = Field(2000, ge=1, description="token budget unless the request says")
    neighbour_window: int = Field(1, ge=0, le=5, description="neighbouring chunks stitched on each side of a hit")
    max_request_bytes: int = Field(1_000_000, ge=1024, description="HTTP request body limit (413 beyond)")

    # -- identity: service keys and verified end-user tokens (JWT) --
    # A request may carry the end user's signed token in ``user_token_header`` besides the service key;
    # it is verified against the JWKS file and/or the PEM public key (docs: README "Verified end users").
    user_token_header: str = Field("X-Stitch-User-Token", pattern=r"^[A-Za-z0-9-]{1,64}$")
    jwt_jwks_file: Path | None = Field(None, description="JWKS document of the identity provider (keys by kid)")
    jwt_public_key_file: Path | None = Field(None, description="PEM public key for tokens without a kid")
    jwt_issuer: str | None = Field(None, description="required 'iss' (required when a key is configured)")
    jwt_audience: str | None = Field(None, description="required 'aud' (required when a key is configured)")
    jwt_algorithms: tuple[str, ...] = Field(("RS256", "ES256"), min_length=1, description="asymmetric only")
    jwt_leeway_seconds: float = Field(30.0, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    jwt_roles_claim: str = Field("groups", min_length=1, description="claim (dotted path) holding groups/roles")
    jwt_role_map: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="claim value -> Stitch roles; unmapped values are ignored"
    )

    # -- ingest confinement: what HTTP ingest may read, source ownership, delete guard --
    ingest_roots: tuple[Path, ...] = Field(
        (), description="folders HTTP ingest jobs may read manifests and data from (JSON list in the "
                        "environment); none: HTTP ingest is refused. The CLI is not confined")
    max_delete_share: float = Field(
        0.5, ge=0.0, le=1.0, description="a sync that would delete more than this share of a source's "
                                         "documents is refused unless --allow-mass-delete is given")

    # -- revocation and forgetting --

    # -- serving: encoder batching, back-pressure, threads --
    model_cache_dir: Path | None = Field(
        None, description="exported ONNX models, shared by every data dir; unset: ~/.cache/stitch/models"
    )
    encoder_threads: int = Field(0, ge=0, description="cores an ingest encoding uses; 0: one per core")
    encoder_split: Literal["batches", "operators"] = Field(
        "batches", description="how an ingest encoding uses its cores: 'batches' (default) runs that many batches "
        "at once, one thread each; 'operators' runs one batch at a time with that many ONNX Runtime intra-op "
        "threads (earlier versions; stalls whenever other ingest work takes one of the cores, docs/serving.md §6)")
    encoder_query_threads: int = Field(
        1, ge=1, description="ONNX Runtime intra-op threads per query model call (a short query does not split well)")
    encoder_graph: Literal["plain", "fused"] = Field(
        "fused", description="ONNX export recipe: 'fused' (default) applies ONNX Runtime's transformer fusions "
        "before int8 (same plan, same code: SciFact test nDCG@10 dense 0.6637 vs 0.6632, hybrid 0.7348 both; "
        "query encoding ~25 % faster; docs/serving.md §8); 'plain' the unfused export of earlier versions")
    query_batch_window_ms: float = Field(
        0.0, ge=0, le=50, description="extra wait for company before a queued batch runs; a lone query never waits")
    query_batch_max: int = Field(32, ge=1, le=256, description="queries encoded in one model call at most")
    query_queue_max: int = Field(256, ge=1, description="queries waiting for the encoder before HTTP 503 + Retry-After")

    # -- HTTP layer: request threads, uvicorn options --
    request_threads: int = Field(
        0, ge=0, le=256, description="retrieval calls of HTTP requests running at once (the rest wait on the event "
        "loop, bounded by request_queue_max); 0 = one per CPU core: near idle on 2 cores, 2 threads did 91-94 "
        "requests/s at 50 clients and 40 threads 70-76 (the GIL, not the encoder, is what they share); two per "
        "core in a serve worker (serve_workers), whose store calls wait on the primary without the GIL")
    request_queue_max: int = Field(
        256, ge=1, description="HTTP requests waiting for a retrieval thread before HTTP 503 + Retry-After")
    access_log: bool = Field(False, description="uvicorn's per-request access log (the audit trail records every request)")
    serve_workers: int = Field(
        1, ge=0, le=64, description="API worker processes of `stitch serve` that answer /v1/context and /v1/search "
        "(the primary process keeps the store, jobs and every other route; api/workers.py); 1 = one process, "
        "0 = one per CPU core")

    # -- context quality: relevance floor, entity-aware stitching --
    weak_relevance: float = Field(
        0.3, ge=0, le=1, description="a pack whose best passage relevance is below this is flagged weak"
    )

    # -- MCP, console and clients --
    api_key: SecretStr | None = Field(
        None, description="the API key `stitch mcp` (stdio) acts with; needs the `context` scope"
    )
    console_reports_dir: Path = Field(
        Path("reports"), description="where the console reads the latest `stitch eval all --out` report and plots"
    )
    console_session_seconds: int = Field(
        8 * 3600, ge=60, le=30 * 86400,
        description="a console login lasts this long (sessions are kept in the data dir and survive a restart)",
    )

    # -- governance: audit chain, feedback, redaction --
    audit_rotate_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="the audit trail rotates past this size (the chain continues)"
    )

    # -- side channels and store integrity: metrics, audit records, embedded-store lock --
    store_lock_timeout: float = Field(
        30.0, ge=0, description="seconds a CLI command waits for an embedded store another process holds"
    )

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        # Tokens come from another system: verify with its public keys, never a shared secret, never none.
        bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"jwt_algorithms: {bad} not allowed; choose from {', '.join(ASYMMETRIC_ALGORITHMS)}")
        return algorithms

    @field_validator("jwt_role_map")
    @classmethod
    def _roles_are_role_names(cls, mapping: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        from core.access import check_role
        from core.errors import InputError

        try:
            return {value: tuple(check_role(r, where=f"jwt_role_map[{value!r}]") for r in roles)
                    for value, roles in mapping.items()}
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _token_keys_need_issuer_and_audience(self) -> "Settings":
        if self.jwt_jwks_file or self.jwt_public_key_file:
            missing = [f for f in ("jwt_issuer", "jwt_audience") if not getattr(self, f)]
            if missing:
                raise ValueError(f"{', '.join(missing)} must be set when user tokens are verified")
        return self

    @field_validator("qdrant_url", "embedding_model", "reranker_model", "qdrant_api_key")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def qdrant_path(self) -> Path:
        """Directory of the embedded Qdrant shard."""
        return self.data_dir / "qdrant" / self.collection

    @property
    def model_cache_path(self) -> Path:
        """Where ONNX exports of the embedding model are cached (``stitch prepare-model`` fills it)."""
        return self.model_cache_dir or Path.home() / ".cache" / "stitch" / "models"

    @property
    def ledger_path(self) -> Path:
        """SQLite ledger of ingested documents."""
        return self.data_dir / "ledger.sqlite3"

    @property
    def registry_path(self) -> Path:
        """SQLite entity registry."""
        return self.data_dir / "entities.sqlite3"

    @property
    def audit_log_path(self) -> Path:
        """JSON-lines audit log of API requests."""
        return self.data_dir / "audit.jsonl"

    @property
    def packs_path(self) -> Path:
        """SQLite records of what each context request returned (explain / replay)."""
        return self.data_dir / "packs.sqlite3"

    @property
    def feedback_path(self) -> Path:
        """SQLite expert labels on context requests."""
        return self.data_dir / "feedback.sqlite3"

    @property
    def tuning_path(self) -> Path:
        """What ``stitch tune`` learned from feedback (portable JSON; export/import it)."""
        return self.data_dir / "tuning.json"

    @property
    def console_sessions_path(self) -> Path:
        """SQLite console sessions (hashed session ids; shared by replicas on one data dir)."""
        return self.data_dir / "console_sessions.sqlite3"

    @property
    def keys_path(self) -> Path:
        """API keys file (hashed keys); defaults inside the data directory."""
        return self.api_keys_file or self.data_dir / "api_keys.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings()


def available_cores() -> int:
    """CPU cores this process may run on: its affinity mask (which a container or taskset narrows), not
    the machine's count. What the "0 = one per core" settings resolve to."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# prometheus_client's own variable (not a Stitch setting): `stitch serve` with workers sets it before the
# library is first imported, in the primary and (inherited) in every worker; then each process writes its
# metric values to files there and GET /metrics sums them (api.metrics, api.workers).
_METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_across_processes(directory: Path) -> None:
    """Put this process, and the processes it starts, in prometheus_client's multi-process mode."""
    os.environ[_METRICS_DIR_VARIABLE] = str(directory)


def shared_metrics_dir() -> str | None:
    """The multi-process metrics directory, when this process is one of several serve processes."""
    return os.environ.get(_METRICS_DIR_VARIABLE) or None

