"""Ingest jobs over HTTP: validated up front, run one at a time per store in a background thread
(independent of the request that submitted them), state persisted as JSON in ``data_dir/jobs/``."""

from __future__ import annotations

import json
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

from pydantic import ValidationError

from core.errors import ManifestError, NotFoundError
from ingest.manifest import Manifest, load_manifest

RunIngest = Callable[[list[Manifest], bool, Callable[[str, int], None]], dict]
_JOB_ID = re.compile(r"^job_[0-9a-f]{32}$")
_FINAL = ("succeeded", "failed", "interrupted")


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


def manifests_from_paths(paths: list[str]) -> list[Manifest]:
    """Manifest files on the server; every one is validated before anything is queued."""
    manifests = []
    for raw in paths:
        try:
            manifests.append(load_manifest(Path(raw)))
        except (OSError, ValueError) as exc:  # a directory, a NUL byte, unreadable...
            raise ManifestError(f"{raw[:200]!r}: cannot read manifest ({type(exc).__name__})") from exc
    return manifests


def manifest_from_object(data: dict) -> Manifest:
    """A manifest sent inline; its ``path`` must be an absolute folder/file on the server."""
    path = data.get("path")
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise ManifestError("inline manifest: key 'path' must be an absolute path on the server")
    if "manifest_path" in data:
        raise ManifestError("inline manifest: unknown key 'manifest_path'")
    try:
        manifest = Manifest(**data, manifest_path=Path(path) / "inline-manifest.yaml")
    except ValidationError as exc:
        problems = "; ".join(f"key '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()[:10])
        raise ManifestError(f"inline manifest: {problems}") from exc
    except TypeError as exc:
        raise ManifestError(f"inline manifest: {exc}") from exc
    if not manifest.root.exists():
        raise ManifestError(f"inline manifest: key 'path': {path[:200]!r} does not exist")
    return manifest


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

    def submit(self, manifests: list[Manifest], *, full: bool, key_id: str | None) -> JobState:
        """Queue a job; returns its state (``queued``)."""
        job = JobState(f"job_{uuid.uuid4().hex}", "queued", [m.source for m in manifests], full, time.time(), key_id)
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

    def get(self, job_id: str) -> JobState:
        """A job's persisted state (404 for malformed or unknown ids alike)."""
        path = self._dir / f"{job_id}.json"
        if not _JOB_ID.match(job_id) or not path.exists():
            raise NotFoundError("ingest job not found")
        with self._lock:
            return JobState(**json.loads(path.read_text(encoding="utf-8")))

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
            job.report = self._run(manifests, job.full, progress)
            job.status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - a failed job is reported, the worker carries on
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
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
