"""``stitch entities list/show/merge/split/never-link/resolve``: steward review of the entity registry.

The steward sees every alias and mention (the CLI runs with the data directory's full rights).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from api.cli_audit import record_cli_action
from core.errors import NotFoundError, StitchError

entities_app = typer.Typer(help="Review and correct the entity registry.", no_args_is_help=True)


def _store():  # noqa: ANN202 - the registry store
    from core.config import get_settings
    from entity_resolution.registry import RegistryStore

    try:
        return RegistryStore(get_settings().registry_path)
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError names the variable
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from exc


def _chunks():  # noqa: ANN202 - the vector store, or None when another process holds it
    """Steward changes re-stamp chunk entity ids at once when the store can be opened; else the next ingest run does."""
    from core.config import get_settings
    from core.store.factory import open_store

    try:
        return open_store(get_settings())
    except StitchError as exc:
        typer.echo(f"note: chunk entity ids will be re-stamped by the next ingest run ({exc})", err=True)
        return None


def _print(data: object, as_json: bool, human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        typer.echo(human)


def _fail(exc: StitchError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1 if isinstance(exc, NotFoundError) else 2)


@entities_app.command("list")
def list_cmd(
    q: Annotated[str, typer.Option("--q", "-q", help="only entities with an alias containing this")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Entities, most-mentioned first, with their aliases."""
    from entity_resolution.views import list_entities

    views = list_entities(_store(), query=q, acl_tokens=None, limit=limit)
    human = "\n".join(f"{v.entity_id}\t{v.type}\t{v.name}\t{' | '.join(v.aliases)}" for v in views) or "(no entities)"
    _print({"entities": [v.to_dict() for v in views]}, as_json, human)


@entities_app.command("show")
def show_cmd(
    entity_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One entity: aliases, mentions (source, document, surface form) and merge evidence."""
    from entity_resolution.views import entity_view

    try:
        view = entity_view(_store(), entity_id, acl_tokens=None)
    except StitchError as exc:
        _fail(exc)
    lines = [f"{view.entity_id}  {view.type}  {view.name}", "aliases: " + " | ".join(view.aliases)]
    lines += [f"  {m.source}\t{m.doc_id}\t{m.surface}" for m in view.mentions]
    lines += [f"  evidence {e['a']!r} ~ {e['b']!r}: weight {e['weight']} ({e['origin']})" for e in view.evidence]
    _print(view.to_dict(), as_json, "\n".join(lines))


@entities_app.command("merge")
def merge_cmd(
    entity_id: Annotated[str, typer.Argument()],
    other_id: Annotated[str, typer.Argument(help="merged into ENTITY_ID")],
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Merge two entities; the rule persists and wins on every re-run."""
    from entity_resolution.steward import merge_entities

    try:
        survivor = merge_entities(_store(), entity_id, other_id, note=note, chunks=_chunks())
    except StitchError as exc:
        _fail(exc)
    record_cli_action("entity_merge", entity_ids=[entity_id, other_id], survivor=survivor)
    typer.echo(survivor)


@entities_app.command("split")
def split_cmd(
    entity_id: Annotated[str, typer.Argument()],
    alias: Annotated[list[str], typer.Option("--alias", help="alias to move to a new entity (repeatable)")],
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Move aliases out into their own entity; they never re-link automatically."""
    from entity_resolution.steward import split_entity

    try:
        new_id = split_entity(_store(), entity_id, alias, note=note, chunks=_chunks())
    except StitchError as exc:
        _fail(exc)
    record_cli_action("entity_split", entity_ids=[entity_id, new_id], aliases=len(alias))
    typer.echo(new_id)


@entities_app.command("never-link")
def never_link_cmd(
    entity_id: Annotated[str, typer.Argument()],
    other_id: Annotated[str, typer.Argument()],
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Record that two entities are different; automatic resolution will never join them."""
    from entity_resolution.steward import never_link

    try:
        never_link(_store(), entity_id, other_id, note=note, chunks=_chunks())
    except StitchError as exc:
        _fail(exc)
    record_cli_action("entity_never_link", entity_ids=[entity_id, other_id])


@entities_app.command("resolve")
def resolve_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Re-cluster the whole registry from scratch (steward rules applied); prints counts."""
    from entity_resolution.steward import rebuild

    counts = rebuild(_store(), chunks=_chunks())
    _print(counts, as_json, " ".join(f"{k}={v}" for k, v in counts.items()))
