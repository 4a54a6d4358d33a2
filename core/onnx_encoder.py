"""ONNX Runtime encoder: the same transformer exported once to ONNX (opset 17), optionally int8.

The export is cached under ``settings.data_dir / "models"``; nothing is downloaded. Pooling is done
here exactly as sentence-transformers does for all-MiniLM-L6-v2: mean over the attention mask, then
L2 normalisation. ``onnx-int8`` quantises the weights dynamically (QInt8, per channel), which on a
2-core CPU runs roughly 1.7x the torch throughput with cosine > 0.98 to the torch vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from core.config import Settings
from core.errors import ConfigurationError

_OPSET = 17


def _cache_dir(settings: Settings, path: str) -> Path:
    weights = Path(path) / "model.safetensors"
    stamp = f"{Path(path).resolve()}|{weights.stat().st_mtime_ns if weights.exists() else 0}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return settings.data_dir / "models" / f"{Path(path).name}-{digest}"


def _max_seq_length(path: str) -> int:
    config = Path(path) / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def _wrapper_class():  # noqa: ANN202 - built lazily so importing this module does not import torch
    import torch

    class TokenEmbeddings(torch.nn.Module):
        """Keyword-call wrapper: transformers' forward signature is not stable positionally."""

        def __init__(self, model) -> None:  # noqa: ANN001
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    return TokenEmbeddings


def export_onnx(path: str, target: Path) -> Path:
    """Export the HF transformer at ``path`` to ``target/model.onnx`` (token embeddings out)."""
    import torch
    from transformers import AutoModel

    target.mkdir(parents=True, exist_ok=True)
    out = target / "model.onnx"
    model = _wrapper_class()(AutoModel.from_pretrained(path, local_files_only=True)).eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    dynamic = {0: "batch", 1: "sequence"}
    tmp = target / f"model.onnx.{os.getpid()}.tmp"
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "token_type_ids": dynamic,
                          "last_hidden_state": dynamic},
            opset_version=_OPSET, dynamo=False,
        )
    tmp.replace(out)  # atomic: a concurrent or killed export never leaves a half file behind
    return out


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of the weights (per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(target)
    return target


def onnx_model_file(settings: Settings, path: str, *, int8: bool) -> Path:
    """The cached ONNX file for the model, exporting (and quantising) it on first use."""
    cache = _cache_dir(settings, path)
    fp32 = cache / "model.onnx"
    if not fp32.exists():
        export_onnx(path, cache)
    if not int8:
        return fp32
    q = cache / "model.int8.onnx"
    if not q.exists():
        quantize_int8(fp32, q)
    return q


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence embeddings computed by onnxruntime."""

    def __init__(self, model_file: Path, path: str, *, name: str, batch_size: int = 32) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._window = _max_seq_length(path)
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self.name = name
        self.max_tokens = self._window - 2
        self.dimension = int(self._encode_batch(["dimension probe"]).shape[1])

    @property
    def tokenizer(self):  # noqa: ANN201 - a transformers fast tokenizer
        """The model's own tokenizer (chunks are bounded with it)."""
        return self._tokenizer

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self._window, return_tensors="np")
        feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in self._inputs}
        if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        with self._lock:
            hidden = self._session.run(None, feeds)[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode_batch([text])[0]

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


def load_onnx_encoder(settings: Settings, path: str) -> OnnxEncoder:
    """The encoder for ``settings.encoder_backend`` in {"onnx", "onnx-int8"}."""
    backend = settings.encoder_backend
    if backend not in {"onnx", "onnx-int8"}:
        raise ConfigurationError(f"encoder_backend {backend!r} is not an ONNX backend")
    try:
        model_file = onnx_model_file(settings, path, int8=backend == "onnx-int8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write the ONNX model cache under {settings.data_dir}: {exc}") from exc
    name = f"{os.path.basename(path.rstrip('/'))}+{backend}"
    return OnnxEncoder(model_file, path, name=name, batch_size=settings.embed_batch_size)
