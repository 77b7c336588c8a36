"""The product catalogue and how customers pick products from it.

Popularity is Zipf-like within each category; a customer first picks a category from their own
preferences, then a product by popularity, and a price-sensitive customer tends to take the
cheaper of two candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np

from sendwise.simulate.clock import DAY_US, SECOND_US, epoch_us
from sendwise.simulate.vocabulary import CATEGORIES

logger = logging.getLogger(__name__)

CHUNK = 1_000_000
WORDS_PER_DESCRIPTION = 6


@dataclass
class Catalogue:
    category: np.ndarray  # int8 index into CATEGORIES
    price: np.ndarray  # float64 list price
    in_stock: np.ndarray  # bool
    created_us: np.ndarray  # int64
    popularity: np.ndarray  # float64, sums to one within each category
    adjective: np.ndarray  # int8 index into the category's adjectives
    noun: np.ndarray  # int8 index into the category's nouns
    words: np.ndarray  # (n, WORDS_PER_DESCRIPTION) int8 indices into the category's words

    def __len__(self) -> int:
        return len(self.category)


def build_catalogue(rng: np.random.Generator, n: int, start: date, zipf: float) -> Catalogue:
    shares = np.array([c.share for c in CATEGORIES])
    counts = np.maximum(1, np.floor(shares / shares.sum() * n).astype(np.int64))
    counts[np.argmax(counts)] += n - counts.sum()
    category = rng.permutation(np.repeat(np.arange(len(CATEGORIES), dtype=np.int8), counts))

    medians = np.array([c.median_price for c in CATEGORIES])
    raw = rng.lognormal(np.log(medians[category]), 0.5)
    price = np.maximum(0.99, np.round(raw) - 0.01)

    popularity = np.empty(n)
    for c in range(len(CATEGORIES)):
        members = np.flatnonzero(category == c)
        ranks = rng.permutation(len(members)) + 1.0
        weights = ranks**-zipf
        popularity[members] = weights / weights.sum()

    n_words = len(CATEGORIES[0].words)
    words = np.argsort(rng.random((n, n_words)), axis=1)[:, :WORDS_PER_DESCRIPTION]
    three_years = 3 * 365 * DAY_US
    return Catalogue(
        category=category,
        price=price,
        in_stock=rng.random(n) < 0.95,
        created_us=epoch_us(start) - rng.integers(SECOND_US, three_years, size=n),
        popularity=popularity,
        adjective=rng.integers(0, len(CATEGORIES[0].adjectives), size=n).astype(np.int8),
        noun=rng.integers(0, len(CATEGORIES[0].nouns), size=n).astype(np.int8),
        words=words.astype(np.int8),
    )


class ProductSampler:
    """Draws products for customers by category preference x popularity x price sensitivity."""

    def __init__(
        self, catalogue: Catalogue, prefs_cum: np.ndarray, price_sensitivity: np.ndarray
    ) -> None:
        self._catalogue = catalogue
        self._prefs_cum = prefs_cum  # (customers, categories) cumulative preference, last = 1
        self._sensitivity = price_sensitivity
        # Products sorted by category; "category + cumulative share" is one increasing axis, so
        # a single searchsorted draws from any category's popularity distribution.
        self._order = np.argsort(catalogue.category, kind="stable")
        cat_sorted = catalogue.category[self._order].astype(np.float64)
        pop_sorted = catalogue.popularity[self._order]
        cum = np.zeros_like(pop_sorted)
        for c in range(len(CATEGORIES)):
            block = np.flatnonzero(cat_sorted == c)
            cum[block] = np.cumsum(pop_sorted[block])
            cum[block[-1]] = 1.0  # no rounding gap into the next category
        self._axis = cat_sorted + cum

    def categories(self, rng: np.random.Generator, customers: np.ndarray) -> np.ndarray:
        """One category per entry of ``customers``, from that customer's preferences."""
        out = np.empty(len(customers), dtype=np.int8)
        for lo in range(0, len(customers), CHUNK):
            cum = self._prefs_cum[customers[lo : lo + CHUNK]]
            u = rng.random(len(cum), dtype=np.float32)[:, None]
            out[lo : lo + CHUNK] = np.minimum((cum < u).sum(axis=1), len(CATEGORIES) - 1)
        return out

    def in_category(self, rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
        """One product per entry of ``category``, drawn by popularity."""
        target = category + rng.random(len(category))
        pos = np.searchsorted(self._axis, target, side="left")
        return self._order[np.minimum(pos, len(self._order) - 1)].astype(np.int32)

    def products(self, rng: np.random.Generator, customers: np.ndarray) -> np.ndarray:
        """One product per entry of ``customers``; price-sensitive ones lean to cheaper items."""
        category = self.categories(rng, customers)
        first = self.in_category(rng, category)
        second = self.in_category(rng, category)
        price = self._catalogue.price
        cheaper = np.where(price[second] < price[first], second, first)
        take_cheap = rng.random(len(customers)) < self._sensitivity[customers]
        return np.where(take_cheap, cheaper, first).astype(np.int32)
