"""Source manifests (CONTRACT §2): parsed strictly, errors name the file, the key and the value in plain words.

pydantic validates here because a manifest is user input at an edge (like HTTP bodies); files and
inline manifests sent over HTTP go through the same ``manifest_from_mapping``. The validated
manifest is handed to the library as a frozen model.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.access import check_acl_entry
from core.errors import InputError, ManifestError
from core.pathmatch import glob_problem

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_INTERNAL_KEYS = ("manifest_path", "origin", "owner")
_MAX_MANIFEST_BYTES = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_globs(value: tuple[str, ...]) -> tuple[str, ...]:
    for index, glob in enumerate(value):
        problem = glob_problem(glob)
        if problem:
            raise ValueError(f"[{index}]: glob {glob!r} {problem}")
    return value


class AclRule(_Strict):
    """Files: the first rule whose glob matches a file's root-relative path gives its roles."""

    match: str
    roles: tuple[str, ...]

    @field_validator("match")
    @classmethod
    def _glob_is_valid(cls, value: str) -> str:
        problem = glob_problem(value)
        if problem:
            raise ValueError(f"glob {value!r} {problem}")
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
    # Filled in by the loader, never by the manifest: where it lives, how errors name it, who owns its source.
    manifest_path: Path = Path(".")
    origin: str = ""
    owner: str = ""

    @field_validator("source")
    @classmethod
    def _source_name(cls, value: str) -> str:
        if not _SOURCE_NAME.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits, '-' or '_' (at most 64)")
        return value

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_globs(value)

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
        """Absolute, resolved (symlinks followed) path of the data the manifest points at."""
        return (self.manifest_path.parent / self.path).resolve()


_LIST_HINTS = {"default": " of roles, e.g. [sales]", "roles": " of roles, e.g. [finance, exec]",
               "include": ' of globs, e.g. ["**/*.md"]', "exclude": ' of globs, e.g. ["drafts/**"]',
               "text_fields": " of field names, e.g. [description, notes]", "rules": " of {match, roles} rules"}
_KEY_SHOWN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,40}$")


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _describe(error: dict) -> str:
    """One pydantic error in plain words: the key, what it must be, what it got."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    where = _where(loc)
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "extra_forbidden":  # a key that is not an identifier may be a line of some other file
        return f"unknown key '{where}'" if _KEY_SHOWN.match(str(loc[-1])) else "an unknown key (not shown)"
    if kind == "missing":
        return f"missing key '{where}'"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"key '{where}': must be a list{_LIST_HINTS.get(last, '')}, got {_shown(value)}"
    if kind in ("string_type", "string_sub_type"):
        return f"key '{where}': must be text, got {_shown(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"key '{where}': must be true or false, got {_shown(value)}"
    if kind == "literal_error":
        return f"key '{where}': must be one of {error['ctx']['expected']}, got {_shown(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"key '{where}': must be a mapping of keys to values, got {_shown(value)}"
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        if message.startswith("["):  # an item of a list: name it in the key
            index, _, message = message.partition(": ")
            return f"key '{where}{index}': {message}"
        return f"key '{where}': {message}" if loc else message
    return f"key '{where}': {error['msg'].lower()}"


def _check_roles(manifest: Manifest, origin: str) -> None:
    spots = [("acl.default", manifest.acl.default)]
    spots += [(f"acl.rules[{i}].roles", r.roles) for i, r in enumerate(manifest.acl.rules)]
    for key, roles in spots:
        for role in roles:
            try:
                check_acl_entry(role, where=f"{origin}: key '{key}'")
            except InputError as exc:
                raise ManifestError(str(exc)) from exc


def is_confined(path: Path, roots: tuple[Path, ...], forbidden: tuple[Path, ...]) -> bool:
    """Inside a root, and neither inside nor above a forbidden folder (Stitch's own data directory)."""
    resolved = [f.resolve() for f in forbidden]
    return (any(path.is_relative_to(r.resolve()) for r in roots)
            and not any(path.is_relative_to(f) or f.is_relative_to(path) for f in resolved))


def manifest_from_mapping(
    raw: object, *, origin: str, manifest_path: Path, owner: str,
    ingest_roots: tuple[Path, ...] | None = None, forbidden: tuple[Path, ...] = (),
) -> Manifest:
    """Validate a manifest given as a mapping (from a file or an HTTP body); ManifestError names ``origin``.

    ``ingest_roots`` (HTTP): the data must resolve inside one of them and outside ``forbidden``, and
    errors never show absolute server paths. None (the steward's own CLI): any existing path.
    """
    if not isinstance(raw, dict):
        raise ManifestError(f"{origin}: a manifest is a YAML mapping ('key: value' lines), "
                            f"got {type(raw).__name__}")
    internal = [k for k in _INTERNAL_KEYS if k in raw]
    if internal:
        raise ManifestError(f"{origin}: unknown key '{internal[0]}'")
    try:
        manifest = Manifest(**raw, manifest_path=manifest_path, origin=origin, owner=owner)
    except ValidationError as exc:
        problems = "; ".join(dict.fromkeys(_describe(e) for e in exc.errors()[:10]))
        raise ManifestError(f"{origin}: {problems}") from exc
    except TypeError as exc:  # keys that are not strings
        raise ManifestError(f"{origin}: every key must be text") from exc
    _check_roles(manifest, origin)
    shown = repr(manifest.path) if ingest_roots is None or not Path(manifest.path).is_absolute() else "the path"
    if ingest_roots is not None and not is_confined(manifest.root, ingest_roots, forbidden):
        raise ManifestError(f"{origin}: key 'path': {shown} is outside the configured ingest roots")
    if not manifest.root.exists():
        raise ManifestError(f"{origin}: key 'path': {shown} does not exist")
    _check_kind_specifics(manifest, origin)
    return manifest


def load_manifest(
    path: str | Path, *, origin: str | None = None, ingest_roots: tuple[Path, ...] | None = None,
    forbidden: tuple[Path, ...] = (),
) -> Manifest:
    """Read and validate one manifest file; raise ManifestError naming the file (``origin``) and key.

    A relative ``path`` is resolved against the manifest's folder and may leave it (``../exports``):
    confinement (``ingest_roots``) applies to what callers send over HTTP, not to a steward's CLI.
    """
    path = Path(path)
    origin = origin or str(path)
    try:
        data = path.read_bytes()[: _MAX_MANIFEST_BYTES + 1]
    except FileNotFoundError as exc:
        raise ManifestError(f"{origin}: manifest not found") from exc
    except OSError as exc:  # a directory, unreadable...
        raise ManifestError(f"{origin}: cannot read manifest ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > _MAX_MANIFEST_BYTES:
        raise ManifestError(f"{origin}: a manifest is at most {_MAX_MANIFEST_BYTES:,} bytes")
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{origin}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ManifestError(f"{origin}: not valid YAML{where}") from exc
    resolved = path.resolve()
    return manifest_from_mapping(raw, origin=origin, manifest_path=resolved, owner=str(resolved),
                                 ingest_roots=ingest_roots, forbidden=forbidden)


_RECORD_SUFFIXES = {".csv", ".json", ".jsonl", ".ndjson"}


def _check_kind_specifics(manifest: Manifest, origin: str) -> None:
    names = {name for _, name, _, _ in string.Formatter().parse(manifest.uri_template or "") if name}
    if manifest.kind == "files":
        if names - {"relpath"}:
            raise ManifestError(f"{origin}: key 'uri_template': files only know {{relpath}}, not "
                                f"{', '.join(sorted(names - {'relpath'}))}")
        for key in ("id_field", "title_field", "updated_field", "text_fields", "entity_fields"):
            if getattr(manifest, key):
                raise ManifestError(f"{origin}: key '{key}' applies to kind 'records' only")
    elif manifest.root.is_file() and manifest.root.suffix.lower() not in _RECORD_SUFFIXES:
        raise ManifestError(f"{origin}: key 'path': records are read from .csv, .json or .jsonl files, "
                            f"not {manifest.root.suffix or 'a file without extension'!r}")
    elif manifest.acl.rules:
        raise ManifestError(f"{origin}: key 'acl.rules' applies to kind 'files' only (records use acl.field)")


def check_distinct_sources(manifests: list[Manifest]) -> None:
    """Two manifests of one job must not share a source name (each would delete the other's documents)."""
    first: dict[str, str] = {}
    for manifest in manifests:
        if manifest.source in first:
            raise ManifestError(f"{manifest.origin}: key 'source': {manifest.source!r} is also the source of "
                                f"{first[manifest.source]}")
        first[manifest.source] = manifest.origin
