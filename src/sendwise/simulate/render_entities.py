"""The customer, product and consent tables, in the canonical warehouse shape."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sendwise.simulate.catalogue import WORDS_PER_DESCRIPTION, Catalogue
from sendwise.simulate.population import ZONES, Population
from sendwise.simulate.strings import (
    concat,
    id_width,
    lookup,
    numbers,
    prefixed_ids,
    quoted,
    table,
    timestamps,
)
from sendwise.simulate.vocabulary import (
    CATEGORIES,
    FEMALE_NAMES,
    GENDERS,
    GENERIC_WORDS,
    LAST_NAMES,
    LOYALTY_TIERS,
    MALE_NAMES,
    PLACES,
)

logger = logging.getLogger(__name__)

SHOP_URL = "https://shop.example.com"


def customer_ids(n: int) -> pa.Array:
    return prefixed_ids("C", n, id_width(n, 7))


def customer_emails(n: int) -> pa.Array:
    """Lower-case, valid and unique: c0000001@example.com."""
    return concat(prefixed_ids("c", n, id_width(n, 7)), "@example.com")


def product_ids(n: int) -> pa.Array:
    return prefixed_ids("P", n, id_width(n, 6))


def customer_table(pop: Population, ids: pa.Array, emails: pa.Array) -> pa.Table:
    names = (*FEMALE_NAMES, *MALE_NAMES)
    first = pop.gender.astype(np.int64) * len(FEMALE_NAMES) + pop.first_name
    no_attributes = ~pop.has_attributes
    attributes = concat(
        '{"gender":',
        quoted(lookup(GENDERS, pop.gender, mask=no_attributes)),
        ',"birth_year":',
        numbers(pop.birth_year),
        ',"loyalty_tier":',
        quoted(lookup(LOYALTY_TIERS, pop.loyalty)),
        "}",
    )
    return table(
        "customer",
        {
            "customer_id": ids,
            "email": emails,
            "first_name": lookup(names, first, mask=pop.first_name < 0),
            "last_name": lookup(LAST_NAMES, pop.last_name),
            "created_at": timestamps(pop.created_us),
            "country": lookup([p.country for p in PLACES], pop.place),
            "city": lookup([p.city for p in PLACES], pop.place),
            "timezone": lookup(ZONES, pop.zone),
            "attributes": attributes,
        },
    )


def product_names(catalogue: Catalogue) -> pa.Array:
    adjectives = [a for c in CATEGORIES for a in c.adjectives]
    nouns = [w for c in CATEGORIES for w in c.nouns]
    cat = catalogue.category.astype(np.int64)
    adj = lookup(adjectives, cat * len(CATEGORIES[0].adjectives) + catalogue.adjective)
    noun = lookup(nouns, cat * len(CATEGORIES[0].nouns) + catalogue.noun)
    return concat(adj, " ", noun)


def product_table(catalogue: Catalogue, ids: pa.Array, rng: np.random.Generator) -> pa.Table:
    n = len(catalogue)
    cat = catalogue.category.astype(np.int64)
    names = product_names(catalogue)
    vocabulary = [w for c in CATEGORIES for w in c.words]
    per_cat = len(CATEGORIES[0].words)
    words = [
        lookup(vocabulary, cat * per_cat + catalogue.words[:, i])
        for i in range(WORDS_PER_DESCRIPTION)
    ]
    generic = lookup(GENERIC_WORDS, rng.integers(0, len(GENERIC_WORDS), size=n))
    category = lookup([c.name for c in CATEGORIES], cat)
    description = concat(
        names, ": ", pc.binary_join_element_wise(*words, " "), ". A ", generic, " pick",
        " from our ", category, " range.",
    )  # fmt: skip
    return table(
        "product",
        {
            "product_id": ids,
            "name": names,
            "description": description,
            "category": category,
            "price": pa.array(catalogue.price),
            "in_stock": pa.array(catalogue.in_stock),
            "url": concat(f"{SHOP_URL}/p/", ids),
            "image_url": concat(f"{SHOP_URL}/img/", ids, ".jpg"),
            "created_at": timestamps(catalogue.created_us),
        },
    )


def consent_table(
    pop: Population, ids: pa.Array, withdrawn_by: tuple[np.ndarray, np.ndarray]
) -> pa.Table:
    """A granted row at signup for consenting customers, a withdrawn row per unsubscribe."""
    granted = np.flatnonzero(pop.consent)
    customer = np.concatenate([granted, withdrawn_by[0]]).astype(np.int64)
    time_us = np.concatenate([pop.created_us[granted], withdrawn_by[1]])
    withdrawn = np.arange(len(customer)) >= len(granted)
    order = np.argsort(time_us, kind="stable")
    customer, time_us, withdrawn = customer[order], time_us[order], withdrawn[order]
    kind = withdrawn.astype(np.int64)
    return table(
        "consent",
        {
            "customer_id": ids.take(pa.array(customer)),
            "channel": lookup(["email"], np.zeros(len(customer))),
            "purpose": lookup(["marketing"], np.zeros(len(customer))),
            "status": lookup(["granted", "withdrawn"], kind),
            "source": lookup(["signup", "unsubscribe_link"], kind),
            "recorded_at": timestamps(time_us),
        },
    )
