"""``stitch eval feedback`` and ``stitch tune fit/export/import``: feedback as evaluation and training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.errors import StitchError

tune_app = typer.Typer(help="Learn from expert feedback; export/import what was learned.", no_args_is_help=True)


def _services():  # noqa: ANN202 - api.services.Services
    from api.services import Services
    from core.config import get_settings

    return Services(get_settings())


def _print(data: dict, as_json: bool, human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        typer.echo(human)


def eval_feedback(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recall@10 and nDCG@10 of today's retrieval on every request experts labelled."""
    from evaluation.feedback import run_feedback_eval

    result = run_feedback_eval(_services())
    _print(result, as_json, f"{result['requests']} labelled requests, {result['labels']} labels: "
                            f"nDCG@10 {result['ndcg@10']}, Recall@10 {result['recall@10']}; "
                            f"{len(result['entity_corrections'])} entity corrections for steward review")


@tune_app.command("fit")
def tune_fit(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; never apply")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Refit fusion, prefetch depth, entity weight and per-source priors on the labels; apply only if held-out nDCG@10 improves."""
    from evaluation.feedback import run_tune

    result = run_tune(_services(), apply=not dry_run)
    if "held_out" not in result:
        _print(result, as_json, f"not tuned: {result['reason']}")
        return
    before, after = result["held_out"]["before"]["ndcg@10"], result["held_out"]["after"]["ndcg@10"]
    verdict = "applied" if result["applied"] else ("better, not applied (--dry-run)" if result["better"] else "kept the current state")
    _print(result, as_json, f"held-out nDCG@10 {before} -> {after} on {result['held_out']['after']['requests']} "
                            f"requests ({result['train_requests']} to fit): {verdict}")


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
