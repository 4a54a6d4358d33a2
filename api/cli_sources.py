"""``stitch sources list/remove``: what is indexed per source, and removing a source for good."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from core.errors import NotFoundError, StitchError

sources_app = typer.Typer(help="List indexed sources; remove one (chunks, ledger rows, entity names).",
                          no_args_is_help=True)


@sources_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each source with its indexed documents and the manifest that owns it."""
    from api.cli import _settings
    from api.commands import source_table

    rows = source_table(_settings())
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for row in rows:
        typer.echo(f"{row['source']}\t{row['documents']} documents\towner: {row['owner'] or '-'}")


@sources_app.command("remove")
def remove_cmd(
    source: Annotated[str, typer.Argument(help="the manifest's `source` name")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the job report as JSON")] = False,
) -> None:
    """Delete every document of SOURCE from the index, the ledger and the entity registry, and free
    the name (the audit trail keeps its records and gets a `source_remove` one)."""
    from api.cli import _fail, _settings
    from api.commands import format_report, run_remove_source

    if not yes and not typer.confirm(f"Remove every document of source {source!r}?", err=True):
        _fail("nothing removed", 1)
    try:
        report = run_remove_source(_settings(), source)
    except NotFoundError as exc:
        _fail(str(exc), 2)
    except StitchError as exc:
        _fail(str(exc), 2)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        typer.echo(format_report(report))
