"""Expert feedback: stored per principal, ACL-checked, turned into evaluation data, and tuning that
applies only when it improves held-out nDCG@10."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from evaluation.feedback import run_feedback_eval, run_tune
from governance.tuning import TuningState, load_state
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests
from core.errors import ConfigurationError

TOPICS = [
    "zorblax sync", "quenta login", "vexil export", "morrow billing", "tandem upload", "krill search",
    "ossify backup", "plinth printing", "garnet webhook", "hollis invoice", "juniper calendar", "lattice report",
    "mosaic import", "nectar badge", "orbit payroll", "pylon mailbox", "quarry archive", "russet tagging",
    "sable dashboard", "tundra scheduler", "umber metrics", "velvet alerts", "willow routing", "xenon ledger",
]


def _corpus(root):
    for source, default in (("kb", "support"), ("chatter", "support")):
        folder = root / source
        folder.mkdir(parents=True)
        (root / f"{source}.yaml").write_text(
            f"source: {source}\nkind: files\npath: {source}\nacl:\n  default: [{default}]\n", encoding="utf-8")
    (root / "restricted").mkdir()
    (root / "restricted.yaml").write_text(
        "source: restricted\nkind: files\npath: restricted\nacl:\n  default: [legal]\n", encoding="utf-8")
    (root / "restricted" / "memo.md").write_text("# Memo\n\nThe zorblax sync settlement is confidential.\n")
    for i, topic in enumerate(TOPICS):
        slug = topic.replace(" ", "-")
        (root / "kb" / f"{slug}.md").write_text(
            f"# How to repair {topic}\n\nResolution: open the admin panel, rotate the service token, then run "
            f"the repair job for {topic}. Verified by the platform team in release {i + 3}.\n", encoding="utf-8")
        (root / "chatter" / f"{slug}.md").write_text(
            f"# {topic} {topic}\n\n{topic}? {topic} broken again. {topic} {topic} anyone? {topic} fix?\n",
            encoding="utf-8")
    return [load_manifest(root / f"{name}.yaml") for name in ("kb", "chatter", "restricted")]


@pytest.fixture()
def served(tmp_path, encoder):
    manifests = _corpus(tmp_path)
    services = Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["encoder"] = encoder
    ingest_manifests(manifests, services.ingest_context())
    keys = KeyStore(services.settings.keys_path)
    key = keys.create(scopes=("context",), roles=("support", "legal"), principals=("*",))
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, {"Authorization": f"Bearer {key}"}, services
    services.store.close()


def _ask(client, headers, topic, request_id, who="sam"):
    body = {"query": f"{topic} fix", "principal": {"id": who, "roles": ["support"]}, "top_k": 4}
    response = client.post("/v1/context", headers={**headers, "X-Request-ID": request_id}, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _label_all(client, headers):
    for i, topic in enumerate(TOPICS):
        _ask(client, headers, topic, f"req-{i}")
        slug = topic.replace(" ", "-")
        labels = [{"doc_id": f"kb:{slug}.md", "label": "relevant"},
                  {"doc_id": f"chatter:{slug}.md", "label": "not_relevant"}]
        body = {"request_id": f"req-{i}", "principal": {"id": "sam", "roles": ["support"]}, "labels": labels}
        response = client.post("/v1/feedback", headers=headers, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == 2


def test_feedback_is_acl_checked_and_bound_to_the_requests_principal(served):
    client, headers, _ = served
    _ask(client, headers, "zorblax sync", "req-x")
    hidden = {"request_id": "req-x", "principal": {"id": "sam", "roles": ["support"]},
              "labels": [{"doc_id": "restricted:memo.md", "label": "missing"}]}
    denied = client.post("/v1/feedback", headers=headers, json=hidden)
    absent = client.post("/v1/feedback", headers=headers, json={**hidden, "labels": [
        {"doc_id": "restricted:no-such.md", "label": "missing"}]})
    assert denied.status_code == absent.status_code == 404
    assert denied.json()["error"]["message"] == absent.json()["error"]["message"]
    other = {"request_id": "req-x", "principal": {"id": "eve", "roles": ["support"]},
             "labels": [{"doc_id": "kb:zorblax-sync.md", "label": "relevant"}]}
    assert client.post("/v1/feedback", headers=headers, json=other).status_code == 404
    unknown = {**other, "request_id": "never-made"}
    assert client.post("/v1/feedback", headers=headers, json=unknown).status_code == 404
    bad = {**other, "principal": {"id": "sam", "roles": ["support"]}, "labels": [{"doc_id": "kb:x", "label": "meh"}]}
    assert client.post("/v1/feedback", headers=headers, json=bad).status_code == 422


def test_feedback_becomes_evaluation_data_and_tuning_improves_held_out_ndcg(served):
    client, headers, services = served
    _label_all(client, headers)
    before = run_feedback_eval(services)
    assert before["requests"] == len(TOPICS) and before["labels"] == 2 * len(TOPICS)
    result = run_tune(services)
    held = result["held_out"]
    assert held["after"]["requests"] > 0 and result["train_requests"] > 0
    assert held["after"]["ndcg@10"] > held["before"]["ndcg@10"], held
    assert result["applied"] is True
    state = load_state(services.settings.tuning_path)
    assert state.source_priors["kb"] > state.source_priors["chatter"]
    assert state.held_out["after"] == held["after"]["ndcg@10"]


def test_tuning_keeps_the_current_state_when_it_would_not_help(served):
    client, headers, services = served
    for i, topic in enumerate(TOPICS[:12]):
        _ask(client, headers, topic, f"r-{i}")
        slug = topic.replace(" ", "-")
        labels = [{"doc_id": f"kb:{slug}.md", "label": "relevant"}, {"doc_id": f"chatter:{slug}.md", "label": "relevant"}]
        client.post("/v1/feedback", headers=headers,
                    json={"request_id": f"r-{i}", "principal": {"id": "sam", "roles": ["support"]}, "labels": labels})
    result = run_tune(services)
    assert result["applied"] is False
    assert not services.settings.tuning_path.exists()


def test_the_tuning_file_is_portable_and_validated(tmp_path):
    state = TuningState(fusion="rrf", prefetch_limit=50, entity_weight=2.0, source_priors={"kb": 1.5}, trained_on=9)
    assert TuningState.from_json(state.to_json(), where="t.json") == state
    broken = json.loads(state.to_json())
    broken["source_priors"] = {"kb": -1}
    with pytest.raises(ConfigurationError, match="source_priors"):
        TuningState.from_json(json.dumps(broken), where="t.json")
    with pytest.raises(ConfigurationError, match="not a Stitch tuning file"):
        TuningState.from_json("{}", where="t.json")


def test_tune_route_needs_admin_fits_in_the_serving_process_and_serves_the_result(served):
    client, headers, services = served
    _label_all(client, headers)
    assert client.post("/v1/tune", headers=headers, json={}).status_code == 403
    admin = {"Authorization": "Bearer " + KeyStore(services.settings.keys_path).create(scopes=("admin",), roles=())}
    old = services.retriever
    assert not old.source_priors
    dry = client.post("/v1/tune", headers=admin, json={"dry_run": True})
    assert dry.status_code == 200 and dry.json()["applied"] is False and dry.json()["better"] is True
    assert services.retriever is old and not services.settings.tuning_path.exists()
    fitted = client.post("/v1/tune", headers=admin, json={})
    assert fitted.status_code == 200, fitted.text
    assert fitted.json()["applied"] is True and fitted.json()["entity_corrections"] == []
    assert services.retriever is not old, "the server retrieves with the new state without a restart"
    assert services.retriever.source_priors == load_state(services.settings.tuning_path).source_priors
    assert services.retriever.source_priors["kb"] > services.retriever.source_priors["chatter"]


def test_a_tuning_file_written_by_another_process_is_served_without_a_restart(served):
    """A serve worker never sees the primary's POST /v1/tune: it rebuilds its retriever when the file changes."""
    from governance.tuning import save_state

    _, _, services = served
    old = services.retriever
    assert services.retriever is old, "unchanged file: the same retriever, no rebuild per request"
    state = TuningState(fusion="rrf", prefetch_limit=50, entity_weight=2.0, source_priors={"kb": 1.5}, trained_on=9)
    save_state(state, services.settings.tuning_path)  # as the primary's POST /v1/tune would
    assert services.retriever is not old and services.retriever.source_priors == {"kb": 1.5}
    assert services.retriever.plan.fusion == "rrf" and services.retriever.plan.prefetch_limit == 50


def test_use_store_swaps_the_store_under_the_tuning_aware_retriever(served):
    """The leak prober's way to serve a wrapped store: the next retriever reads it, also after the tuning file
    changes, and handing the real store back un-wraps the retriever too."""
    from governance.tuning import save_state

    _, _, services = served
    real = services.store
    assert services.retriever.store is real

    class Wrapped:
        def __init__(self, inner) -> None:  # noqa: ANN001
            self.inner = inner

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.inner, name)

    wrapped = Wrapped(real)
    services.use_store(wrapped)
    assert services.store is wrapped and services.retriever.store is wrapped
    save_state(TuningState(fusion="rrf", prefetch_limit=50, entity_weight=2.0, source_priors={"kb": 1.5},
                           trained_on=9), services.settings.tuning_path)
    assert services.retriever.source_priors == {"kb": 1.5} and services.retriever.store is wrapped
    services.use_store(real)
    assert services.store is real and services.retriever.store is real


@pytest.fixture()
def cli_env(monkeypatch):
    from core.config import get_settings

    def point_at(data_dir):  # noqa: ANN001, ANN202 - the CLI's settings: this data dir, a short lock wait
        monkeypatch.setenv("STITCH_DATA_DIR", str(data_dir))
        monkeypatch.setenv("STITCH_STORE_LOCK_TIMEOUT", "0.2")
        get_settings.cache_clear()

    yield point_at
    get_settings.cache_clear()


def test_eval_feedback_with_nothing_labelled_opens_no_store(tmp_path, cli_env, monkeypatch):
    """Nothing to search: it answers while another process holds the data dir, and loads no model."""
    from typer.testing import CliRunner

    from api.cli import app
    from core.store.edge import EdgeStore

    def no_model(settings):  # noqa: ANN001, ANN202
        raise AssertionError("stitch eval feedback loaded the encoder with nothing to search")

    monkeypatch.setattr("api.services.load_encoder", no_model)
    cli_env(tmp_path / "data")
    holder = EdgeStore(Settings(data_dir=tmp_path / "data").qdrant_path)  # as another process's store
    try:
        result = CliRunner().invoke(app, ["eval", "feedback", "--json"])
    finally:
        holder.close()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"] == 0 and "waiting" not in result.output


def test_eval_feedback_searches_so_it_waits_for_another_store_holder_saying_so(served, cli_env):
    """Scoring re-runs the labelled requests: it needs the store, waits for its lock, then fails cleanly."""
    from typer.testing import CliRunner

    from api.cli import app
    from core.store.edge import EdgeStore
    from core.store.factory import close_store

    client, headers, services = served
    _ask(client, headers, TOPICS[0], "req-0")
    body = {"request_id": "req-0", "principal": {"id": "sam", "roles": ["support"]},
            "labels": [{"doc_id": "kb:zorblax-sync.md", "label": "relevant"}]}
    assert client.post("/v1/feedback", headers=headers, json=body).status_code == 200
    close_store(services.settings)  # the store is now another process's
    services.use_store(EdgeStore(services.settings.qdrant_path))  # (closed by the fixture)
    cli_env(services.settings.data_dir)
    result = CliRunner().invoke(app, ["eval", "feedback", "--json"])
    assert result.exit_code == 2, result.output
    assert "waiting up to 0.2 s" in result.output and "error: " in result.output
