"""``stitch audit verify`` / ``stitch audit export``: check the hash chain, hand records to reviewers."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from core.errors import StitchError

audit_app = typer.Typer(help="The tamper-evident audit trail: verify the chain, export records.", no_args_is_help=True)


def _settings():  # noqa: ANN202
    from core.config import get_settings

    try:
        return get_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError names the variable
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from exc


def cli_actor() -> str:
    """Who ran a CLI command: the OS user (the CLI has the data directory's full rights)."""
    return f"cli:{getpass.getuser()}"


def record_cli_action(action: str, **fields: object) -> None:
    """Steward CLI commands (keys, entities) record what they did, attributed to the OS user."""
    from governance.audit import audit_event

    audit_event(_settings(), action, actor=cli_actor(), **fields)


@audit_app.command("verify")
def verify_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check every record's hash and link across rotated files; exit 1 at the first broken record."""
    from governance.audit_review import verify_trail

    result = verify_trail(_settings().audit_log_path)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    elif result.ok:
        typer.echo(f"ok: {result.records} records in {result.files} file(s); last hash {result.last_hash}")
    else:
        b = result.broken
        typer.echo(f"BROKEN at {b.file} line {b.line} (seq {b.seq}): {b.reason}; "
                   f"{result.records} records verified before it", err=True)
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("export")
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="jsonl | csv")] = "jsonl",
    since: Annotated[Optional[str], typer.Option("--since", help="ISO date/time, inclusive (UTC if no zone)")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="ISO date/time, exclusive")] = None,
    principal: Annotated[Optional[str], typer.Option("--principal", help="only this principal id")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="file (default: stdout)")] = None,
) -> None:
    """Records in chain order for a compliance review (never query or document text: there is none)."""
    from governance.audit_review import export_records, parse_time, select_records

    try:
        records = select_records(_settings().audit_log_path, since=parse_time(since, where="--since"),
                                 until=parse_time(until, where="--until"), principal=principal)
        lines = export_records(records, fmt=fmt)
        handle = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            for text in lines:
                handle.write(text)
        finally:
            if output:
                handle.close()
    except StitchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
