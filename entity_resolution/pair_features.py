"""Learned matching of structured record pairs (DeepMatcher-style tables): rapidfuzz, TF-IDF, model numbers,
prices and optional embedding cosine, fed to gradient boosting with a threshold tuned on held-out pairs."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

NUMERIC_FIELDS = frozenset({"price", "year"})
_CODE = re.compile(r"[a-z0-9][a-z0-9\-/.]*[0-9][a-z0-9\-/.]*|[0-9][a-z0-9\-/.]*[a-z][a-z0-9\-/.]*")
EmbedFn = Callable[[list[str]], np.ndarray]


def model_codes(text: str) -> set[str]:
    """Model-number-like tokens (letters and digits mixed, or long digit runs), separators removed."""
    out = set()
    for raw in _CODE.findall(text.lower()):
        code = re.sub(r"[\-/.]", "", raw)
        if len(code) >= 4 or (len(code) >= 3 and not code.isdigit()):
            out.add(code)
    return out


@dataclass(frozen=True)
class RecordTable:
    """One side's records as field → value dicts keyed by id."""

    fields: tuple[str, ...]
    rows: dict[str, dict[str, str]]

    def text(self, rid: str, limit: int = 400) -> str:
        row = self.rows[rid]
        return " ".join(row[f] for f in self.fields if f not in NUMERIC_FIELDS and row.get(f))[:limit]


def _string_features(a: str, b: str) -> list[float]:
    if not a or not b:
        return [np.nan] * 5 + [0.0]
    a, b = a[:300].lower(), b[:300].lower()
    return [
        fuzz.ratio(a, b) / 100, fuzz.token_set_ratio(a, b) / 100, fuzz.token_sort_ratio(a, b) / 100,
        fuzz.partial_ratio(a, b) / 100, JaroWinkler.normalized_similarity(a, b), 1.0,
    ]


def _numeric_features(a: str, b: str) -> list[float]:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return [np.nan, np.nan]
    return [abs(x - y) / max(abs(x), abs(y), 1e-9), float(x == y)]


def _code_features(a: str, b: str) -> list[float]:
    ca, cb = model_codes(a), model_codes(b)
    flat_a, flat_b = re.sub(r"[\s\-/.]", "", a.lower()), re.sub(r"[\s\-/.]", "", b.lower())
    if not ca and not cb:
        return [np.nan, np.nan, np.nan, 0.0]
    shared = ca & cb
    jaccard = len(shared) / len(ca | cb)
    contained = float(any(c in flat_b for c in ca) or any(c in flat_a for c in cb))
    longest = max((len(c) for c in shared), default=0)
    return [jaccard, contained, float(longest), float(bool(ca) and bool(cb) and not shared)]


class PairFeaturizer:
    """Turns (left id, right id) pairs into a feature matrix; TF-IDF fit on both tables' text."""

    def __init__(self, left: RecordTable, right: RecordTable, *, embed: EmbedFn | None = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.left, self.right, self.embed = left, right, embed
        self.fields = tuple(f for f in left.fields if f in right.fields)
        corpus = [left.text(r) for r in left.rows] + [right.text(r) for r in right.rows]
        self.word = TfidfVectorizer(sublinear_tf=True, token_pattern=r"[\w\-/.]+").fit(corpus)
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit(corpus)
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._tokens = self.word.build_analyzer()
        self._idf = dict(zip(self.word.get_feature_names_out(), self.word.idf_))
        self._neighbours = [NearestRival(v, left, right) for v in (self.word, self.char)]

    def _embedding(self, side: str, table: RecordTable, ids: Sequence[str]) -> None:
        missing = [i for i in dict.fromkeys(ids) if (side, i) not in self._vectors]
        if missing and self.embed:
            vectors = self.embed([table.text(i, 300) for i in missing])
            self._vectors.update({(side, i): v for i, v in zip(missing, vectors)})

    def features(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One row of features per pair."""
        left_text = [self.left.text(a) for a, _ in pairs]
        right_text = [self.right.text(b) for _, b in pairs]
        cosines = [_row_cosine(v.transform(left_text), v.transform(right_text)) for v in (self.word, self.char)]
        if self.embed:
            self._embedding("l", self.left, [a for a, _ in pairs])
            self._embedding("r", self.right, [b for _, b in pairs])
        rows = []
        for k, (a, b) in enumerate(pairs):
            ra, rb = self.left.rows[a], self.right.rows[b]
            row: list[float] = [cosines[0][k], cosines[1][k]]
            for f in self.fields:
                row += _numeric_features(ra.get(f, ""), rb.get(f, "")) if f in NUMERIC_FIELDS else _string_features(ra.get(f, ""), rb.get(f, ""))
            row += _code_features(left_text[k], right_text[k])
            row += self._rare_token_features(left_text[k], right_text[k])
            for rival, cosine in zip(self._neighbours, cosines):
                row += rival.features(a, b, cosine[k])
            if self.embed:
                row.append(float(np.dot(self._vectors[("l", a)], self._vectors[("r", b)])))
            rows.append(row)
        return np.asarray(rows, dtype=np.float64)

    def _rare_token_features(self, a: str, b: str) -> list[float]:
        """IDF-weighted overlap: a shared rare token ("pslx350h") says more than a shared "black"; the rarest
        token only one side has says what the other lacks."""
        ta, tb = set(self._tokens(a)), set(self._tokens(b))
        if not ta or not tb:
            return [np.nan] * 4
        idf = [{t: self._idf.get(t, 0.0) for t in group} for group in (ta & tb, ta | tb, ta - tb, tb - ta)]
        shared, union, only_a, only_b = idf
        return [sum(shared.values()) / max(sum(union.values()), 1e-9), max(shared.values(), default=0.0),
                max(only_a.values(), default=0.0), max(only_b.values(), default=0.0)]


class NearestRival:
    """How a pair's TF-IDF cosine compares with each record's best match in the whole other table (unlabelled
    records only): a pair that is each side's nearest neighbour is far likelier a match than one that merely
    scores high in a crowd of near-identical products."""

    def __init__(self, vectorizer, left: RecordTable, right: RecordTable, chunk: int = 512) -> None:  # noqa: ANN001
        self.left_ids = {r: i for i, r in enumerate(left.rows)}
        self.right_ids = {r: i for i, r in enumerate(right.rows)}
        a = vectorizer.transform([left.text(r) for r in left.rows]).astype(np.float32)
        b = vectorizer.transform([right.text(r) for r in right.rows]).astype(np.float32).T.tocsc()
        self.best_left = np.zeros(a.shape[0], dtype=np.float32)
        self.second_left = np.zeros(a.shape[0], dtype=np.float32)
        self.best_right = np.zeros(b.shape[1], dtype=np.float32)
        for start in range(0, a.shape[0], chunk):
            block = (a[start:start + chunk] @ b).toarray()
            top = np.sort(block, axis=1)[:, -2:] if block.shape[1] > 1 else np.hstack([block, block])
            self.best_left[start:start + chunk], self.second_left[start:start + chunk] = top[:, 1], top[:, 0]
            self.best_right = np.maximum(self.best_right, block.max(axis=0))

    def features(self, a: str, b: str, cosine: float) -> list[float]:
        best_a, best_b = self.best_left[self.left_ids[a]], self.best_right[self.right_ids[b]]
        second_a = self.second_left[self.left_ids[a]]
        return [cosine / max(best_a, 1e-6), cosine / max(best_b, 1e-6), cosine - second_a,
                float(cosine >= best_a - 1e-6 and cosine >= best_b - 1e-6)]


def _row_cosine(x, y) -> np.ndarray:  # noqa: ANN001 - sparse matrices
    return np.asarray(x.multiply(y).sum(axis=1)).ravel()


def train_matcher(features: np.ndarray, labels: np.ndarray, *, seed: int = 0):  # noqa: ANN201 - sklearn model
    """Gradient boosting on pair features (handles missing values natively)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    leaf = min(20, max(2, len(labels) // 10))  # tiny labelled sets still get splits
    model = HistGradientBoostingClassifier(
        max_iter=400 if len(labels) >= 1000 else 50, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=leaf, l2_regularization=1.0,
        random_state=seed,
    )
    return model.fit(features, labels)


def best_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The probability cut that maximises F1 on held-out pairs."""
    best = (0.0, 0.5)
    for cut in np.linspace(0.05, 0.95, 91):
        predicted = probabilities >= cut
        tp = float(np.sum(predicted & (labels == 1)))
        f1 = 2 * tp / max(float(predicted.sum() + (labels == 1).sum()), 1.0)
        best = max(best, (f1, float(cut)))
    return best[1]
