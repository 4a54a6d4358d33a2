"""The installed Stitch version, from the package metadata (pyproject.toml is the one source)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("stitch")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"
