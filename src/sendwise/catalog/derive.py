"""Categories from product text: character n-gram TF-IDF, LSA, k-means, named by top words.

Product names are short and noisy ("WHITE HANGING HEART T-LIGHT HOLDER"): word TF-IDF leaves
most products nearly orthogonal to each other and k-means then puts half the catalogue in one
cluster. Character 3-5-grams within words ("candle" ~ "candles", "t-light" ~ "light") give
every product neighbours; a 100-dimension LSA projection, normalised, makes k-means work on
cosine. A cluster more than three times the mean size is then split in two (largest first)
while fewer than ``max_categories`` exist, so that no "everything else" bucket swallows the
catalogue. Each category is named by the three words of highest mean TF-IDF among its
products (plural forms folded), which makes the names readable and stable for a given text.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

WORDS = r"(?u)\b[^\W\d_]{2,}\b"
"""Words of two letters or more, no digits (sizes and SKU numbers are not categories)."""
_WORD = re.compile(WORDS)


def auto_categories(n_products: int) -> int:
    """20 to 40 categories, about sqrt(n / 4), never fewer than 5 products each on average."""
    k = round(float(np.sqrt(n_products / 4))) if n_products else 0
    return max(1, min(max(20, min(k, 40)), n_products // 5 or 1))


def product_text(catalogue: pd.DataFrame) -> pd.Series:
    """Lower-cased name and description of each product."""

    def col(name: str) -> pd.Series:
        if name not in catalogue:
            return pd.Series("", index=catalogue.index)
        return catalogue[name].astype(object).where(catalogue[name].notna(), "").astype(str)

    return (col("name") + " " + col("description")).str.lower()


class CategoryDeriver:
    """Cluster products by their text into ``n_categories`` (unset: :func:`auto_categories`)."""

    def __init__(self, n_categories: int | None = None, *, components: int = 100, seed: int = 0):
        self.n_categories = n_categories
        self.components = components
        self.seed = seed

    def fit_predict(self, catalogue: pd.DataFrame) -> pd.Series:
        """The category name of every product (index aligned to ``catalogue``); products
        without any word get none (NA)."""
        text = product_text(catalogue)
        has_words = text.map(lambda t: _WORD.search(t) is not None).astype(bool)
        out = pd.Series(pd.NA, index=catalogue.index, dtype=object)
        usable = text[has_words]
        k = self.n_categories or auto_categories(len(usable))
        if len(usable) < 2 or k < 2:
            if len(usable):
                out[has_words] = _names(usable, np.zeros(len(usable), np.int64))[0]
            return out
        # clustered in text order, so the same catalogue gives the same categories whatever
        # order its rows arrive in (a parallel scan does not keep one)
        order = np.argsort(usable.to_numpy(dtype=str), kind="stable")
        labels = np.empty(len(order), np.int64)
        labels[order] = self._cluster(usable.iloc[order], min(k, len(usable)))
        names = _names(usable.iloc[order], labels[order])
        out[has_words] = np.asarray(names, dtype=object)[labels]
        self.n_categories_ = len(names)
        return out

    def _cluster(self, text: pd.Series, k: int) -> np.ndarray:
        chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2, dtype=np.float32
        )
        try:
            x = chars.fit_transform(text.str.replace(r"[\d_]+", " ", regex=True).tolist())
        except ValueError:  # every n-gram is unique: one product per category is all we know
            x = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform(text)
        dims = min(self.components, x.shape[1] - 1, x.shape[0] - 1)
        z = (
            normalize(TruncatedSVD(dims, random_state=self.seed).fit_transform(x))
            if dims > 1
            else x
        )
        dense = z.toarray() if hasattr(z, "toarray") else z
        k = min(k, len(np.unique(np.round(dense, 6), axis=0)))  # no more than distinct points
        if k < 2:
            return np.zeros(len(text), np.int64)
        labels = KMeans(k, n_init=4, random_state=self.seed).fit_predict(dense)
        return _split_oversized(dense, labels, max_clusters=max(k, 40), seed=self.seed)


def _split_oversized(z, labels: np.ndarray, *, max_clusters: int, seed: int) -> np.ndarray:
    labels = labels.copy()
    while labels.max() + 1 < max_clusters:
        sizes = np.bincount(labels)
        big = int(sizes.argmax())
        if sizes[big] <= 3 * len(labels) / len(sizes) or sizes[big] < 4:
            break
        rows = np.flatnonzero(labels == big)
        part = z[rows]
        if len(np.unique(np.round(part, 6), axis=0)) < 2:
            break
        halves = KMeans(2, n_init=2, random_state=seed).fit_predict(part)
        if halves.min() == halves.max():
            break
        labels[rows[halves == 1]] = len(sizes)
    return labels


def _names(text: pd.Series, labels: np.ndarray, terms: int = 3) -> list[str]:
    """One name per cluster: its ``terms`` words of highest mean TF-IDF, made unique."""
    words = TfidfVectorizer(token_pattern=WORDS, sublinear_tf=True, stop_words="english")
    try:
        x = words.fit_transform(text.tolist())
    except ValueError:  # only stop words
        return [f"category {c + 1}" for c in range(int(labels.max()) + 1)]
    vocab = np.asarray(words.get_feature_names_out(), dtype=object)
    names: list[str] = []
    for c in range(int(labels.max()) + 1):
        mean = np.asarray(x[labels == c].mean(axis=0)).ravel()
        picked: list[str] = []
        for j in np.argsort(-mean, kind="stable"):
            if mean[j] <= 0 or len(picked) == terms:
                break
            w = str(vocab[j])
            if any(_same_word(w, p) for p in picked):
                continue
            picked.append(w)
        name = ", ".join(picked) or f"category {c + 1}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def _same_word(a: str, b: str) -> bool:
    return a == b or a.rstrip("s") == b.rstrip("s")
