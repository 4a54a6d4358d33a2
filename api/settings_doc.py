"""docs/configuration.md is generated from ``Settings`` so the table cannot drift from the code.

Regenerate after adding a setting: ``.venv/bin/python -m api.settings_doc`` (tests/test_docs.py checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from core.config import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
_HEAD = """# Configuration

Generated from `core/config.py` (`Settings`) by `.venv/bin/python -m api.settings_doc`; do not edit by hand.

Every setting is an environment variable `STITCH_<NAME>` or the same key, lower-case and without the
prefix, in `./stitch.toml` (the environment wins). Values are validated at start-up: a bad one is an error
naming the variable (exit code 2).

| variable | default | meaning |
|---|---|---|
"""


def _default(field) -> str:  # noqa: ANN001 - a pydantic FieldInfo
    value = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, SecretStr):
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return f"`{','.join(map(str, value))}`" if value else "empty"
    text = str(value)
    return f"`./{text}`" if isinstance(value, Path) and not value.is_absolute() else f"`{text}`"


def configuration_markdown() -> str:
    """The whole docs/configuration.md."""
    rows = [
        f"| `STITCH_{name.upper()}` | {_default(field)} | {(field.description or '').replace('|', '/')} |"
        for name, field in Settings.model_fields.items()
    ]
    return _HEAD + "\n".join(rows) + "\n"


if __name__ == "__main__":
    DOC.write_text(configuration_markdown(), encoding="utf-8")
    sys.stderr.write(f"wrote {DOC}\n")
