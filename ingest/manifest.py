"""Source manifests (CONTRACT §2): parsed strictly, errors name the file and the key.

pydantic validates here because a manifest is user input at an edge (like HTTP bodies);
the validated manifest is handed to the library as a frozen model.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ManifestError

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AclRule(_Strict):
    """Files: the first rule whose glob matches a file's relative path gives its roles."""

    match: str
    roles: tuple[str, ...]

    @field_validator("match")
    @classmethod
    def _glob_is_valid(cls, value: str) -> str:
        if not value or value.startswith("/") or "\x00" in value or value.count("[") != value.count("]"):
            raise ValueError(f"bad glob {value!r}")
        return value


class AclSpec(_Strict):
    """Who may see a source's documents."""

    default: tuple[str, ...] = ()
    field: str | None = None
    rules: tuple[AclRule, ...] = ()
    public: bool = False


class RedactSpec(_Strict):
    """One redaction rule: a detector (or a custom pattern) and the roles that may see raw values."""

    detect: Literal["email", "phone", "iban", "card", "pattern"]
    roles: tuple[str, ...] = ()
    pattern: str | None = None
    name: str | None = None
    region: str = "US"

    @model_validator(mode="after")
    def _pattern_iff_custom(self) -> "RedactSpec":
        import regex

        from core.access import check_role
        from core.errors import InputError

        for role in self.roles:
            try:
                check_role(role, where="roles")
            except InputError as exc:
                raise ValueError(str(exc)) from None
        if (self.detect == "pattern") != bool(self.pattern):
            raise ValueError("give 'pattern' exactly when detect is 'pattern'")
        if self.pattern:
            if len(self.pattern) > 500:
                raise ValueError("pattern is longer than 500 characters")
            try:
                regex.compile(self.pattern)
            except regex.error as exc:
                raise ValueError(f"pattern {self.pattern[:60]!r} is not a valid regular expression: {exc}") from None
        if self.name is not None and not _SOURCE_NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be lowercase letters, digits, '-' or '_'")
        return self

    def rule(self):  # noqa: ANN201 - governance.redaction.RedactionRule
        """The library rule this spec describes."""
        from governance.redaction import RedactionRule

        return RedactionRule(self.name or self.detect, self.detect, self.roles, self.pattern or "", self.region)


class Manifest(_Strict):
    """One source of documents, as a data steward describes it."""

    source: str
    kind: Literal["records", "files"]
    path: str
    id_field: str | None = None
    title_field: str | None = None
    text_fields: tuple[str, ...] = ()
    updated_field: str | None = None
    entity_fields: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    acl: AclSpec = Field(default_factory=AclSpec)
    redact: tuple[RedactSpec, ...] = ()
    uri_template: str | None = None
    include: tuple[str, ...] = ("**/*",)
    exclude: tuple[str, ...] = ()
    # Filled in by load_manifest: where the manifest lives.
    manifest_path: Path = Path(".")

    @field_validator("source")
    @classmethod
    def _source_name(cls, value: str) -> str:
        if not _SOURCE_NAME.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits, '-' or '_'")
        return value

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for glob in value:
            if not glob or glob.startswith("/") or glob.count("[") != glob.count("]"):
                raise ValueError(f"bad glob {glob!r}")
        return value

    @model_validator(mode="after")
    def _records_need_fields(self) -> "Manifest":
        if self.kind == "records":
            missing = [k for k in ("id_field",) if not getattr(self, k)]
            if not self.text_fields:
                missing.append("text_fields")
            if missing:
                raise ValueError(f"kind 'records' needs {', '.join(missing)}")
        return self

    @property
    def root(self) -> Path:
        """Absolute path of the data the manifest points at."""
        return (self.manifest_path.parent / self.path).resolve()


def _describe(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    if error["type"] == "missing":
        return f"missing key '{where}'"
    return f"key '{where}': {error['msg']}"


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate one manifest file; raise ManifestError naming the file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: manifest not found") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a manifest is a YAML mapping, got {type(raw).__name__}")
    if "manifest_path" in raw:
        raise ManifestError(f"{path}: unknown key 'manifest_path'")
    try:
        manifest = Manifest(**raw, manifest_path=path.resolve())
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ManifestError(f"{path}: {problems}") from exc
    base = path.resolve().parent
    if not manifest.root.is_relative_to(base):
        raise ManifestError(f"{path}: key 'path': {manifest.path!r} is outside the manifest's folder")
    if not manifest.root.exists():
        raise ManifestError(f"{path}: key 'path': {manifest.path!r} does not exist")
    _check_kind_specifics(manifest, path)
    return manifest


_RECORD_SUFFIXES = {".csv", ".json", ".jsonl", ".ndjson"}


def _check_kind_specifics(manifest: Manifest, path: Path) -> None:
    names = {name for _, name, _, _ in string.Formatter().parse(manifest.uri_template or "") if name}
    if manifest.kind == "files":
        if names - {"relpath"}:
            raise ManifestError(f"{path}: key 'uri_template': files only know {{relpath}}, not "
                                f"{', '.join(sorted(names - {'relpath'}))}")
        for key in ("id_field", "title_field", "updated_field", "text_fields", "entity_fields"):
            if getattr(manifest, key):
                raise ManifestError(f"{path}: key '{key}' applies to kind 'records' only")
    elif manifest.root.is_file() and manifest.root.suffix.lower() not in _RECORD_SUFFIXES:
        raise ManifestError(f"{path}: key 'path': records are read from .csv, .json or .jsonl files, "
                            f"not {manifest.root.suffix or 'a file without extension'!r}")
    elif manifest.acl.rules:
        raise ManifestError(f"{path}: key 'acl.rules' applies to kind 'files' only (records use acl.field)")


def check_distinct_sources(manifests: list[Manifest]) -> None:
    """Two manifests of one job must not share a source name (each would delete the other's documents)."""
    first: dict[str, Path] = {}
    for manifest in manifests:
        if manifest.source in first:
            raise ManifestError(f"{manifest.manifest_path}: key 'source': {manifest.source!r} is also the source of "
                                f"{first[manifest.source]}")
        first[manifest.source] = manifest.manifest_path
