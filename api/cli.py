"""The ``stitch`` command: each command parses, calls one library function, maps errors to exits.

Exit codes: 0 ok, 1 some inputs failed (the rest landed), 2 bad usage / manifest / configuration.
``--json`` prints one JSON object on stdout; human output goes to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from core.config import Settings, get_settings
from core.errors import ConfigurationError, StitchError

app = typer.Typer(help="Stitch: grounded, ACL-filtered context packs from enterprise systems.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys (stored hashed in the keys file).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _register_subcommands() -> None:
    from api.cli_audit import audit_app
    from api.cli_entities import entities_app
    from api.cli_eval import eval_app
    from api.cli_governance import eval_feedback, tune_app
    from api.cli_sources import sources_app

    eval_app.command("feedback")(eval_feedback)
    app.add_typer(eval_app, name="eval")
    app.add_typer(entities_app, name="entities")
    app.add_typer(tune_app, name="tune")
    app.add_typer(audit_app, name="audit")
    app.add_typer(sources_app, name="sources")


_register_subcommands()


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError names the variable
        _fail(f"invalid configuration: {exc}", 2)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _emit(data: dict, as_json: bool, human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        typer.echo(human, err=not sys.stdout.isatty())


@app.command()
def ingest(
    manifests: Annotated[list[Path], typer.Argument(help="source manifest YAML files")],
    full: Annotated[bool, typer.Option("--full", help="re-process every document")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the job report as JSON")] = False,
    take_over: Annotated[bool, typer.Option("--take-over", help="take over sources another manifest owns")] = False,
    allow_mass_delete: Annotated[bool, typer.Option(
        "--allow-mass-delete", help="allow deleting more than max_delete_share of a source")] = False,
) -> None:
    """Incrementally sync each manifest's source into the index and print the job report."""
    from api.commands import run_ingest

    settings = _settings()
    try:
        report = run_ingest(settings, manifests, full=full, show_progress=not as_json and sys.stderr.isatty(),
                            take_over=take_over, allow_mass_delete=allow_mass_delete)
    except ConfigurationError as exc:
        _fail(str(exc), 2)
    except StitchError as exc:
        _fail(str(exc), 2)
    from api.commands import format_report

    _emit(report.to_dict(), as_json, format_report(report))
    raise typer.Exit(report.exit_code)


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="what the context is for")],
    role: Annotated[list[str], typer.Option("--role", help="a role of the principal (repeatable)")] = [],  # noqa: B006
    user: Annotated[str, typer.Option("--user", help="principal id")] = "cli",
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100)] = 8,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 2000,
    source: Annotated[list[str], typer.Option("--source", help="only these sources (repeatable)")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The same context pack as POST /v1/context."""
    from api.commands import format_context, run_query

    settings = _settings()
    try:
        data = run_query(settings, text, roles=role, user=user, top_k=top_k, max_tokens=max_tokens, sources=source)
    except StitchError as exc:
        _fail(str(exc), 2)
    # The answer is this command's output: stdout, piped or not (`> out.txt` must not stay empty).
    sys.stdout.write((json.dumps(data, ensure_ascii=False) if as_json else format_context(data)) + "\n")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
) -> None:
    """Serve the HTTP API with uvicorn (model and store load once at startup).

    Writes ``data_dir/server.json`` and a local key (valid only while this process runs) so
    ``stitch query`` can forward to it.
    """
    _serve(host, port)


def _serve(host: str, port: int, *, held: tuple = ()) -> None:
    """Run the API; ``held`` keys are accepted by this process only (the demo key)."""
    from api.workers import resolved_workers, serve_with_workers

    settings = _settings()
    workers = resolved_workers(settings)
    try:
        if workers > 1:  # decided before the app is imported: the metrics library must learn it first
            serve_with_workers(settings, host, port, workers, held=held)
            return
        import uvicorn

        from api.app import create_app
        from api.serving import announce, withdraw

        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        app = create_app(settings, on_ready=lambda: announce(settings, url, app.state.key_store),
                         on_stop=lambda: withdraw(settings))  # a bad JWKS/PEM file fails here, exit 2
        for key in held:
            app.state.key_store.hold(key)
        # http/loop "auto" pick httptools and uvloop (dependencies): the C parser and loop, not h11/asyncio.
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10,
                    access_log=settings.access_log, http="auto", loop="auto")
    except StitchError as exc:
        _fail(str(exc), 2)


@app.command("prepare-model")
def prepare_model() -> None:
    """Export the configured encoder backend once (ONNX), so no start or request pays for it.

    ``make install`` runs this; a first start without it exports with a message instead."""
    from core.encoder import prepare_model as prepare

    settings = _settings()
    try:
        where = prepare(settings, notify=lambda message: typer.echo(message, err=True))
    except StitchError as exc:
        _fail(str(exc), 2)
    typer.echo(f"{settings.encoder_backend}: {where}", err=True)


@app.command()
def mcp() -> None:
    """Serve the MCP tools over stdio for a local agent, acting with the key in STITCH_API_KEY."""
    from api.mcp import run_stdio

    settings = _settings()
    try:
        run_stdio(settings)
    except StitchError as exc:
        _fail(str(exc), 2)


@app.command()
def demo(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    fixtures: Annotated[Path, typer.Option("--fixtures", help="folder of manifests")] = Path("fixtures/manifests"),
) -> None:
    """Ingest the fixtures into the embedded store, print ready-to-paste examples, and serve."""
    from api.commands import prepare_demo

    settings = _settings()
    try:
        banner, _, key = prepare_demo(settings, fixtures, host=host, port=port)
    except StitchError as exc:
        _fail(str(exc), 2)
    typer.echo(banner, err=True)
    _serve(host, port, held=(key,))


_ROLE_HELP = "a role this key may assert (repeatable; '*' = any)"
_PRINCIPAL_HELP = "a principal id this key may assert: an id, a glob like 'svc-*', or '*' = any (repeatable)"


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", help="context | ingest | entities:write | admin")],
    role: Annotated[list[str], typer.Option("--role", help=_ROLE_HELP)] = [],  # noqa: B006
    principal: Annotated[list[str], typer.Option("--principal", help=_PRINCIPAL_HELP)] = [],  # noqa: B006
    any_principal: Annotated[bool, typer.Option("--any-principal", help="may assert any principal id")] = False,
    verified_only: Annotated[bool, typer.Option(
        "--verified-users-only", help="serve only requests carrying a verified end-user token")] = False,
    name: Annotated[str, typer.Option("--name")] = "",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from api.keys import KeyStore

    settings = _settings()
    principals = (*principal, "*") if any_principal else tuple(principal)
    try:
        plaintext = KeyStore(settings.keys_path).create(
            scopes=tuple(scope), roles=tuple(role), principals=principals,
            verified_users_only=verified_only, name=name,
        )
    except ConfigurationError as exc:
        _fail(f"{exc} — repeat --role / --principal for several", 2)
    from api.cli_audit import record_cli_action

    record_cli_action("key_create", key_id=plaintext.split("_")[1], scopes=list(scope), roles=list(role),
                      principals=list(principals), name=name)
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List key ids, names, scopes, roles and principal ids (never secrets)."""
    from api.keys import KeyStore

    for key in KeyStore(_settings().keys_path).list():
        only = "\tverified-users-only" if key.verified_users_only else ""
        typer.echo(f"{key.key_id}\t{key.name}\tscopes={','.join(key.scopes)}\troles={','.join(key.roles)}"
                   f"\tprincipals={','.join(key.principals) or '(none)'}{only}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a key."""
    from api.keys import KeyStore

    if not KeyStore(_settings().keys_path).revoke(key_id):
        _fail(f"no key with id {key_id!r}", 2)
    from api.cli_audit import record_cli_action

    record_cli_action("key_revoke", key_id=key_id)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
