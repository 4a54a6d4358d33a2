"""``stitch eval feedback`` and ``stitch tune fit/export/import``: feedback as evaluation and training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.errors import NotFoundError, StitchError

tune_app = typer.Typer(help="Learn from expert feedback; export/import what was learned.", no_args_is_help=True)


def _services():  # noqa: ANN202 - api.services.Services
    from api.services import Services
    from core.config import get_settings

    return Services(get_settings(), on_store_wait=lambda message: typer.echo(message, err=True))


def _print(data: dict, as_json: bool, human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        typer.echo(human)


def eval_feedback(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recall@10 and nDCG@10 of today's retrieval on every request experts labelled."""
    from evaluation.feedback import run_feedback_eval

    try:  # re-running the labelled requests reads the store: another holder is waited for, saying so
        result = run_feedback_eval(_services())
    except StitchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print(result, as_json, f"{result['requests']} labelled requests, {result['labels']} labels: "
                            f"nDCG@10 {result['ndcg@10']}, Recall@10 {result['recall@10']}; "
                            f"entity corrections: {_corrections(result['entity_corrections'])}")


def _corrections(items: list[dict]) -> str:
    """'2 applied, 1 pending' and one line per correction."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    lines = [", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"]
    for c in items:
        where = f" -> {c['moved_to']}" if c.get("moved_to") else (f" ({c['skipped']})" if c.get("skipped") else "")
        lines.append(f"  #{c['feedback_id']} {c['status']}: {c['doc_id']} not {c['entity_id']}{where}")
    return "\n".join(lines)


@tune_app.command("fit")
def tune_fit(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; never apply")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply pending entity corrections as steward overrides; refit fusion, prefetch depth, entity weight and
    per-source priors on the labels; apply only if held-out nDCG@10 improves. Runs inside `stitch serve` if one runs."""
    from api.cli_audit import cli_actor
    from core.config import get_settings
    from evaluation.feedback import run_tune_anywhere

    try:
        result = run_tune_anywhere(get_settings(), apply=not dry_run, actor=cli_actor())
    except StitchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    corrections = f"\nentity corrections: {_corrections(result['entity_corrections'])}"
    if "held_out" not in result or result["held_out"] is None:
        _print(result, as_json, f"not tuned: {result['reason']}{corrections}")
        return
    before, after = result["held_out"]["before"]["ndcg@10"], result["held_out"]["after"]["ndcg@10"]
    verdict = "applied" if result["applied"] else ("better, not applied (--dry-run)" if result["better"] else "kept the current state")
    _print(result, as_json, f"held-out nDCG@10 {before} -> {after} on {result['held_out']['after']['requests']} "
                            f"requests ({result['train_requests']} to fit): {verdict}{corrections}")


@tune_app.command("revert")
def tune_revert(feedback_id: Annotated[int, typer.Argument(help="the correction's number (`stitch eval feedback`)")]) -> None:
    """Undo an applied entity correction: its aliases go back to the entity they left (audited)."""
    from api.cli_audit import cli_actor
    from core.config import get_settings
    from evaluation.feedback import revert_anywhere

    try:
        result = revert_anywhere(get_settings(), feedback_id, actor=cli_actor())
    except StitchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1 if isinstance(exc, NotFoundError) else 2) from exc
    typer.echo(f"#{feedback_id} reverted: {result['doc_id']} back in {result['returned_to']}")


@tune_app.command("export")
def tune_export(file: Annotated[Path, typer.Argument(help="where to write the tuning file")]) -> None:
    """Write what tuning learned to a portable JSON file."""
    from core.config import get_settings

    source = get_settings().tuning_path
    if not source.exists():
        typer.echo("error: nothing learned yet (run `stitch tune fit`)", err=True)
        raise typer.Exit(1)
    file.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"wrote {file}", err=True)


@tune_app.command("import")
def tune_import(file: Annotated[Path, typer.Argument(help="a file written by `stitch tune export`")]) -> None:
    """Validate a tuning file and make it this deployment's state (takes effect when the API next starts)."""
    from core.config import get_settings
    from governance.tuning import TuningState, save_state

    try:
        state = TuningState.from_json(file.read_text(encoding="utf-8"), where=file.name)
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {file}: cannot read ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from exc
    except StitchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    save_state(state, get_settings().tuning_path)
    typer.echo(f"imported {file}", err=True)
