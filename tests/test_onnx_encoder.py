"""The ONNX backends embed like the torch model they were exported from."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import Settings
from core.encoder import Encoder, load_encoder

TEXTS = [
    "Enterprise customers may request a refund within 30 days of renewal.",
    "Incident runbook: page the on-call engineer, then open a status page entry.",
    "hello",
    "Parental leave is sixteen weeks at full pay. " * 40,  # longer than the window: truncated alike
]


@pytest.fixture(scope="module")
def onnx_settings(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.mark.parametrize(("backend", "min_cosine"), [("onnx", 0.999), ("onnx-int8", 0.98)])
def test_onnx_vectors_match_torch(encoder, onnx_settings, backend, min_cosine):
    onnx = load_encoder(Settings(data_dir=onnx_settings, encoder_backend=backend))
    assert isinstance(onnx, Encoder)
    assert (onnx.dimension, onnx.max_tokens) == (encoder.dimension, encoder.max_tokens)
    ours, theirs = onnx.encode_passages(TEXTS), encoder.encode_passages(TEXTS)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert (ours * theirs).sum(axis=1).min() > min_cosine
    assert float(onnx.encode_query(TEXTS[0]) @ theirs[0]) > min_cosine
    assert onnx.count_tokens(TEXTS) == encoder.count_tokens(TEXTS)
    assert (onnx_settings / "models").is_dir()  # exported once into the data dir, reused after


def test_onnx_encoder_handles_empty_input(onnx_settings):
    onnx = load_encoder(Settings(data_dir=onnx_settings, encoder_backend="onnx"))
    assert onnx.encode_passages([]).shape == (0, onnx.dimension)
