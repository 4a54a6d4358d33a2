"""Settings sources and ACL token rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.access import acl_tokens_for_roles, principal_tokens
from core.config import Settings
from core.models import Principal


def test_env_overrides_toml_which_overrides_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stitch.toml").write_text('data_dir = "from-toml"\ncollection = "c1"\n')
    monkeypatch.setenv("STITCH_COLLECTION", "from-env")
    settings = Settings()
    assert settings.data_dir == Path("from-toml") and settings.collection == "from-env"
    assert settings.qdrant_url is None and settings.qdrant_path == Path("from-toml/qdrant/from-env")


def test_unknown_toml_key_is_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stitch.toml").write_text('data_dirr = "x"\n')
    with pytest.raises(ValidationError, match="data_dirr"):
        Settings()


def test_empty_qdrant_url_means_embedded(monkeypatch):
    monkeypatch.setenv("STITCH_QDRANT_URL", "")
    assert Settings().qdrant_url is None


def test_acl_tokens():
    assert acl_tokens_for_roles(["sales", "user:bob", " "], public=True) == ("public", "role:sales", "user:bob")
    assert acl_tokens_for_roles([]) == ()  # deny by default: nobody matches an empty ACL
    assert principal_tokens(Principal("alice", ("sales",))) == ("public", "role:sales", "user:alice")
