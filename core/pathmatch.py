"""The one path matcher for manifest ``include``/``exclude`` globs and ``acl.rules`` (docs: README "Manifests").

Semantics: gitignore pattern syntax (``pathspec``'s ``gitignore`` patterns), every pattern **anchored at
the source root** as if it began with ``/``. Paths are POSIX paths relative to the source root.

- ``*`` and ``?`` never cross a ``/``; ``[a-c]``/``[!a-c]`` are character classes; ``\\`` escapes.
- ``**/`` matches zero or more folders, ``/**`` everything inside: ``sales/**`` matches
  ``sales/q3.eml`` and ``sales/2026/q3.eml``, never ``exec/sales/board.eml``.
- A pattern that matches a folder covers everything inside it: ``sales`` ≡ ``sales/**`` — except
  that a last segment of just ``*`` matches direct entries only: ``sales/*`` is ``sales/x.eml``,
  not ``sales/2026/x.eml``.
- ``*.md`` matches top-level ``.md`` files only; ``**/*.md`` matches them at any depth.
- A leading ``/`` is allowed and changes nothing. Matching is case-sensitive.

Python's ``PurePosixPath.match`` (right-anchored) and bare ``fnmatch`` (``*`` crosses ``/``) are
deliberately not used: with them ``sales/**`` matched ``exec/sales/board.eml``.
"""

from __future__ import annotations

from functools import lru_cache

import pathspec


def glob_problem(pattern: object) -> str | None:
    """Why ``pattern`` is not a usable glob, in plain words (None if it is fine)."""
    if not isinstance(pattern, str):
        return "must be a text glob such as \"finance/**\""
    if not pattern.strip():
        return "is empty"
    if pattern != pattern.strip():
        return "has leading or trailing spaces"
    if "\x00" in pattern or any(ord(c) < 32 for c in pattern):
        return "contains control characters"
    if pattern[0] in "!#":
        return f"starts with {pattern[0]!r} (negation and comments are not supported; use exclude)"
    if ".." in pattern.split("/"):
        return "contains '..' (globs match paths inside the source root)"
    if pattern.endswith("\\"):
        return "ends with an unfinished '\\' escape"
    if pattern.count("[") != pattern.count("]"):
        return "has an unclosed '[' character class"
    return None


@lru_cache(maxsize=1024)
def _spec(pattern: str) -> pathspec.PathSpec:
    anchored = "/" + pattern.lstrip("/")
    return pathspec.PathSpec.from_lines("gitignore", [anchored])


def glob_matches(relpath: str, pattern: str) -> bool:
    """True iff the root-relative POSIX ``relpath`` matches ``pattern`` (anchored gitignore semantics)."""
    problem = glob_problem(pattern)
    if problem:
        raise ValueError(f"glob {pattern!r} {problem}")
    return _spec(pattern).match_file(relpath)


def first_match(relpath: str, patterns: tuple[str, ...] | list[str]) -> int | None:
    """Index of the first pattern matching ``relpath``, or None."""
    return next((i for i, p in enumerate(patterns) if glob_matches(relpath, p)), None)
