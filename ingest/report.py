"""The job report of CONTRACT §3."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class FileError:
    """One input that failed, and why."""

    source: str
    item: str
    reason: str


@dataclass
class JobReport:
    """Counts per outcome plus per-file errors; ``exit_code`` follows CONTRACT §3."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    invisible: int = 0
    acl_defaulted: int = 0  # records whose ACL field was empty, so acl.default applied
    chunks: int = 0
    sources: list[str] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    takeovers: list[dict] = field(default_factory=list)  # {"source", "from", "to"}: owners that changed
    seconds: float = 0.0

    def fail(self, source: str, item: str, reason: str) -> None:
        """Count one failed input."""
        self.failed += 1
        self.errors.append(FileError(source, item, reason))

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when some inputs failed (the rest landed)."""
        return 1 if self.failed else 0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data
