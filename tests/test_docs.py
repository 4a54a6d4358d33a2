"""The README and docs/ as a reader of the repository meets them: they stand alone (no paths outside the
repository, every relative link resolves), the configuration table is the one Settings generates, and the
README's examples run as written against a real ``stitch serve``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_configuration_doc_is_generated_from_settings():
    from api.settings_doc import DOC, configuration_markdown

    assert DOC.read_text(encoding="utf-8") == configuration_markdown(), (
        "docs/configuration.md is out of date with core/config.py: run `.venv/bin/python -m api.settings_doc`")


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_docs_stand_alone(path):
    text = path.read_text(encoding="utf-8")
    assert "/work/" not in text, f"{path.name} points outside the repository"
    for target in LINK.findall(text):
        if not target.startswith(("http://", "https://", "mailto:")):
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def _curl_commands(block: str) -> list[str]:
    commands: list[str] = []
    for line in block.splitlines():
        if line.startswith("curl"):
            commands.append(line)
        elif line.startswith(("#", "KEY=")) or not commands:
            continue
        else:
            commands[-1] += "\n" + line
    return commands


@pytest.mark.slow
def test_readme_endpoint_examples_answer_with_the_readme_key(stitch_server):
    """The Endpoints block with the key the README creates just above it (sales + support)."""
    from api.keys import KeyStore

    create = next(line for line in README.splitlines() if "keys create" in line and "--name crm-bot" in line)
    words = shlex.split(create.split("#")[0])
    roles = tuple(words[i + 1] for i, w in enumerate(words) if w == "--role")
    principals = tuple(words[i + 1] for i, w in enumerate(words) if w == "--principal")
    key = KeyStore(stitch_server["data"] / "api_keys.json").create(scopes=("context",), roles=roles,
                                                                   principals=principals)
    block = next(b for b in _blocks("sh") if b.startswith("KEY=stk_") and "localhost:8000/v1/context" in b)
    host = stitch_server["url"].removeprefix("http://")
    ran = 0
    for command in _curl_commands(block):
        if "/v1/ingest" in command or "/metrics" in command:
            continue  # need paths on the server and other keys: covered by tests/test_api_server.py
        script = f'KEY={key}; H="Authorization: Bearer $KEY"\n' + command.replace("localhost:8000", host)
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60).stdout
        for part in filter(None, out.replace("}{", "}\n{").splitlines()):
            assert "error" not in json.loads(part), (command, part)
        ran += 1
    assert ran >= 4


@pytest.mark.slow
def test_readme_python_examples_run(stitch_server):
    from llama_index.core.llms import MockLLM

    url, key = stitch_server["url"], stitch_server["key"]
    examples = [b for b in _blocks("python") if "127.0.0.1:8000" in b or "async def main(url" in b]
    assert len(examples) >= 3
    for code in examples:
        namespace = {"llm": MockLLM()}
        exec(compile(code.replace("http://127.0.0.1:8000", url).replace("stk_…", key), "README", "exec"), namespace)
        if "main" in namespace:
            import anyio

            pack = anyio.run(namespace["main"], url, key)
            assert pack["filtered_for"]["principal_id"] == "alice" and pack["citations"]
