"""``stitch entities list/show/merge/split``: steward review of the entity registry."""

from __future__ import annotations

import typer

entities_app = typer.Typer(help="Review and correct the entity registry.", no_args_is_help=True)
