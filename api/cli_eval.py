"""``stitch eval …``: search-quality evaluations (each calls one evaluation function)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

eval_app = typer.Typer(help="Search-quality and entity-resolution evaluations.", no_args_is_help=True)


def _emit(result: dict, as_json: bool, table: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        typer.echo(table)


@eval_app.command("retrieval")
def eval_retrieval(
    directory: Annotated[Path, typer.Argument(help="BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ingest a BEIR dataset into a scratch collection and report nDCG@10, Recall@10/100, MRR@10, latency."""
    from evaluation.retrieval import format_retrieval_table, run_retrieval_eval

    result = run_retrieval_eval(directory)
    _emit(result, as_json, format_retrieval_table(result))


@eval_app.command("entities")
def eval_entities(
    directory: Annotated[Path, typer.Argument(help="labelled set: DeepMatcher layout (tableA/tableB/test.csv)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pairwise precision / recall / F1 of entity resolution on a labelled set."""
    from evaluation.entities import format_entities_table, run_entities_eval

    result = run_entities_eval(directory)
    _emit(result, as_json, format_entities_table(result))


def _bad_input(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@eval_app.command("all")
def eval_all(
    out: Annotated[Path, typer.Option("--out", help="folder for report.json, report.md and plots")] = Path("reports"),
    corpus: Annotated[Path | None, typer.Option(
        "--corpus", help="corpus folder (manifests/ + gold/): fixtures/ by default, or `stitch eval generate`'s")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ingest a corpus into a scratch data dir; report retrieval, stitching, leaks, entity resolution."""
    from core.errors import InputError
    from evaluation.suite import FIXTURES, format_suite_report, run_all

    try:
        result = run_all(out, corpus=corpus or FIXTURES)
    except InputError as exc:
        _bad_input(exc)
    _emit(result, as_json, format_suite_report(result))
    if result.get("access_control", {}).get("leaks", 0):
        raise typer.Exit(1)


@eval_app.command("leaks")
def eval_leaks(
    probes: Annotated[int, typer.Option("--probes", min=1, help="randomised principal × query × endpoint probes")] = (
        10_000),
    seed: Annotated[int, typer.Option("--seed", help="corpus and probe seed")] = 0,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="a folder of manifests (or with manifests/) "
                                                "instead of the generated canary corpus")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Adversarial prober: ingest a canary corpus in a scratch dir, probe every endpoint; exit 1 on any leak."""
    from evaluation.leaks import run_leaks
    from evaluation.leaks_report import format_leaks_report

    if corpus is not None and not corpus.is_dir():
        raise typer.BadParameter(f"{corpus}: not a folder", param_hint="--corpus")
    command = " ".join(["stitch eval leaks", *sys.argv[3:]]) if len(sys.argv) > 2 else "stitch eval leaks"
    result = run_leaks(probes=probes, seed=seed, corpus=corpus, command=command)
    _emit(result, as_json, format_leaks_report(result))
    if result["leaks"]:
        raise typer.Exit(1)


@eval_app.command("generate")
def eval_generate(
    out: Annotated[Path, typer.Option("--out", help="folder to write the corpus into (replaced if generated before)")],
    seed: Annotated[int, typer.Option("--seed", help="random seed: same seed, same corpus")] = 1,
    orgs: Annotated[int, typer.Option("--orgs", help="number of organisations")] = 30,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Write a seeded enterprise corpus (5 systems, gold questions, labelled mentions) for `eval all --corpus`."""
    from dataclasses import asdict

    from core.errors import InputError
    from evaluation.corpus import generate_corpus

    try:
        summary = asdict(generate_corpus(out, seed, orgs))
    except InputError as exc:
        _bad_input(exc)
    _emit(summary, as_json, f"wrote {sum(summary['documents'].values())} documents and "
                            f"{sum(summary['questions'].values())} questions to {summary['root']} (seed {seed})")
