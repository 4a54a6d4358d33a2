"""Ingest jobs over HTTP: validated up front, run one at a time per store in a background thread
(independent of the request that submitted them), state persisted as JSON in ``data_dir/jobs/``."""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.config import Settings
from core.errors import ManifestError, NotFoundError, PermissionDeniedError, StitchError
from ingest.manifest import Manifest, is_confined, load_manifest, manifest_from_mapping

_log = logging.getLogger("stitch.jobs")
RunIngest = Callable[[list[Manifest], "JobState", Callable[[str, int], None]], dict]
_JOB_ID = re.compile(r"^job_[0-9a-f]{32}$")
_FINAL = ("succeeded", "failed", "interrupted")
# An absolute path left in a message after the ingest roots were made relative.
_ABSOLUTE_PATH = re.compile(r"(?<![\w./\\])/(?:[^\s'\"()/\\]+/)*[^\s'\"()/\\]+")


@dataclass
class JobState:
    """What ``GET /v1/ingest/jobs/{id}`` reports."""

    job_id: str
    status: str  # queued | running | succeeded | failed | interrupted
    sources: list[str]
    full: bool
    submitted_at: float
    key_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict = field(default_factory=lambda: {"documents": 0, "chunks": 0})
    report: dict | None = None
    error: str | None = None
    take_over: bool = False
    allow_mass_delete: bool = False
    manifests: list[str] = field(default_factory=list)  # the console's "owning manifest" column


@dataclass(frozen=True)
class Confinement:
    """What HTTP ingest may read: manifests and data inside ``roots``, never Stitch's own data dir."""

    roots: tuple[Path, ...]
    forbidden: tuple[Path, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "Confinement":
        return cls(tuple(Path(r).resolve() for r in settings.ingest_roots), (settings.data_dir.resolve(),))

    def require_roots(self) -> None:
        if not self.roots:
            raise PermissionDeniedError("HTTP ingest is disabled on this server: no ingest roots are configured "
                                        "(STITCH_INGEST_ROOTS); run `stitch ingest` on the server instead")

    def locate(self, raw: str, where: str) -> tuple[Path, str]:
        """(resolved path, root-relative label) of a path a caller sent; 403 outside the roots."""
        self.require_roots()
        given = Path(raw)
        if not given.is_absolute():
            given = next((r / given for r in self.roots if (r / given).exists()), self.roots[0] / given)
        resolved = given.resolve()
        root = next((r for r in self.roots if resolved.is_relative_to(r)), None)
        if root is None or any(resolved.is_relative_to(f) for f in self.forbidden):
            raise PermissionDeniedError(f"{where}: outside the configured ingest roots")
        return resolved, resolved.relative_to(root).as_posix() or "."

    def recheck(self, manifests: list[Manifest]) -> None:
        """At run time, again: a link swapped since the job was queued must not lead outside the roots."""
        for manifest in manifests:
            if not is_confined(manifest.root, self.roots, self.forbidden):
                raise PermissionDeniedError(f"{manifest.origin}: key 'path' now leads outside the ingest roots")

    def scrub(self, text: str) -> str:
        """``text`` without absolute server paths: under a root they become relative, others are hidden."""
        for root in sorted(self.roots, key=lambda r: -len(str(r))):
            text = text.replace(f"{root}/", "").replace(str(root), ".")
        return _ABSOLUTE_PATH.sub("<server path>", text)


def manifests_from_paths(paths: list[str], confinement: Confinement) -> list[Manifest]:
    """Manifest files under the ingest roots; every one is validated before anything is queued."""
    manifests = []
    for index, raw in enumerate(paths):
        if "\x00" in raw:
            raise ManifestError(f"manifests[{index}]: not a path")
        path, label = confinement.locate(raw, f"manifests[{index}]")
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise ManifestError(f"{label}: a manifest file ends in .yaml or .yml")
        manifests.append(load_manifest(path, origin=label, ingest_roots=confinement.roots,
                                       forbidden=confinement.forbidden))
    return manifests


def manifest_from_object(data: dict, confinement: Confinement) -> Manifest:
    """A manifest sent inline: same validator as files; its ``path`` is under an ingest root
    (absolute, or relative to the first root)."""
    confinement.require_roots()
    path = data.get("path")
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ManifestError("inline manifest: key 'path' must be a folder or file under an ingest root")
    root = (confinement.roots[0] / path).resolve()
    return manifest_from_mapping(data, origin="inline manifest", manifest_path=confinement.roots[0] / "(inline)",
                                 owner=f"inline:{root}", ingest_roots=confinement.roots,
                                 forbidden=confinement.forbidden)


def job_view(job: JobState, confinement: Confinement) -> dict:
    """A job as served over HTTP: no key id, no absolute server path anywhere."""
    data = asdict(job)
    data.pop("key_id", None)
    return _scrubbed(data, confinement)


def _scrubbed(value: object, confinement: Confinement) -> object:
    if isinstance(value, str):
        return confinement.scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, confinement) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, confinement) for v in value]
    return value


class JobRunner:
    """One worker thread per store: jobs queue behind each other, never run concurrently."""

    def __init__(self, jobs_dir: Path, run: RunIngest, *, on_finish: Callable[[JobState], None] | None = None) -> None:
        self._dir = Path(jobs_dir)
        self._run = run
        self._on_finish = on_finish or (lambda _job: None)
        self._queue: queue.Queue[tuple[JobState, list[Manifest]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0

    def start(self) -> None:
        """Mark jobs a previous process left unfinished, then start the worker (once)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        for path in self._dir.glob("job_*.json"):
            job = JobState(**json.loads(path.read_text(encoding="utf-8")))
            if job.status not in _FINAL:
                job.status, job.error = "interrupted", "the server stopped before this job finished; submit it again"
                job.finished_at = time.time()
                self._save(job)
        self._thread = threading.Thread(target=self._work, name="stitch-ingest-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to finish after the current job."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        self._thread = None

    def submit(self, manifests: list[Manifest], *, full: bool, key_id: str | None, take_over: bool = False,
               allow_mass_delete: bool = False) -> JobState:
        """Queue a job; returns its state (``queued``)."""
        job = JobState(f"job_{uuid.uuid4().hex}", "queued", [m.source for m in manifests], full, time.time(), key_id,
                       take_over=take_over, allow_mass_delete=allow_mass_delete,
                       manifests=[str(m.manifest_path) for m in manifests])
        self._save(job)
        with self._lock:
            self._pending += 1
        self._queue.put((job, manifests))
        return job

    def add_finish_listener(self, listener: Callable[[JobState], None]) -> None:
        """Also call ``listener`` with each finished job (metrics, the audit trail)."""
        previous = self._on_finish
        self._on_finish = lambda job: (previous(job), listener(job))

    def pending(self) -> int:
        """Jobs waiting or running."""
        return self._pending

    def get(self, job_id: str, *, viewer: str | None = None, admin: bool = False) -> JobState:
        """A job's persisted state; with ``viewer`` (a key id), only that key's jobs unless ``admin``.

        404 for malformed, unknown and other keys' jobs alike.
        """
        path = self._dir / f"{job_id}.json"
        if not _JOB_ID.match(job_id) or not path.exists():
            raise NotFoundError("ingest job not found")
        with self._lock:
            job = JobState(**json.loads(path.read_text(encoding="utf-8")))
        if viewer is not None and not admin and job.key_id != viewer:
            raise NotFoundError("ingest job not found")
        return job

    def recent(self, *, key_id: str | None, limit: int = 50) -> list[JobState]:
        """The newest jobs first; only those ``key_id`` submitted unless it is None (admin)."""
        with self._lock:
            jobs = [JobState(**json.loads(p.read_text(encoding="utf-8"))) for p in self._dir.glob("job_*.json")]
        mine = [j for j in jobs if key_id is None or j.key_id == key_id]
        return sorted(mine, key=lambda j: j.submitted_at, reverse=True)[:limit]

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            job, manifests = item
            self._execute(job, manifests)

    def _execute(self, job: JobState, manifests: list[Manifest]) -> None:
        job.status, job.started_at = "running", time.time()
        self._save(job)
        last_save = [time.monotonic()]

        def progress(event: str, amount: int) -> None:
            job.progress["documents" if event == "document" else "chunks"] += amount
            if time.monotonic() - last_save[0] > 0.5:
                last_save[0] = time.monotonic()
                self._save(job)

        try:
            job.report = self._run(manifests, job, progress)
            job.status = "succeeded"
        except StitchError as exc:  # our messages name keys and sources, never file contents
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        except Exception as exc:  # noqa: BLE001 - a failed job is reported, the worker carries on
            _log.exception("ingest job %s failed", job.job_id)
            job.status, job.error = "failed", f"{type(exc).__name__} (details in the server log)"
        job.finished_at = time.time()
        self._save(job)
        with self._lock:
            self._pending -= 1
        self._on_finish(job)

    def _save(self, job: JobState) -> None:
        body = json.dumps(asdict(job), ensure_ascii=False)
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".job-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
            os.replace(tmp, self._dir / f"{job.job_id}.json")
