"""Campaign definitions, deterministic balanced assignment, sample sizes, and plans (who is
held out, who is skipped and why, when each message is due)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, chisquare, norm

from sendwise.campaigns.definition import load_definition, parse_definition
from sendwise.campaigns.design import assign, message_keys, sample_size
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.config import CampaignSettings
from sendwise.errors import CampaignError, InputError

BASE = {"name": "Spring sale", "audience": {"segment": "Champions"}}


def definition(**changes):
    return parse_definition(BASE | changes)


# ---- definitions -----------------------------------------------------------------------


def test_toml_and_yaml_definitions_read_the_same(tmp_path) -> None:
    (tmp_path / "c.toml").write_text(
        'name = "Spring sale"\nholdout = 10\n[audience]\nrule = "monetary > 100"\n'
        '[[variants]]\nname = "A"\ntemplate = "a"\nshare = 45\n'
        '[[variants]]\nname = "B"\ntemplate = "b"\nshare = 45\n'
    )
    (tmp_path / "c.yaml").write_text(
        "name: Spring sale\nholdout: 10\naudience: {rule: monetary > 100}\nvariants:\n"
        "  - {name: A, template: a, share: 45}\n  - {name: B, template: b, share: 45}\n"
    )
    toml, yaml = load_definition(tmp_path / "c.toml"), load_definition(tmp_path / "c.yaml")
    assert toml == yaml
    assert toml.arms() == [("A", 45.0), ("B", 45.0), ("holdout", 10.0)]
    assert toml.campaign_id == "spring-sale"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"variants": [{"name": "A", "template": "a", "share": 50}], "holdout": 10},
            "add up to 60%, not 100%",
        ),
        ({"variants": [{"name": "A", "share": 90}], "holdout": 10}, "variant A has no template"),
        ({}, "give a template"),
        ({"template": "a", "audience": {}}, "exactly one of audience.segment or audience.rule"),
        ({"template": "a", "send_at": "tomorrow-ish"}, "is not 'now', 'best_hour'"),
        ({"variants": [{"name": "holdout", "template": "a"}]}, "'holdout' is reserved"),
        ({"template": "a", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_definitions_are_refused_with_the_reason(changes, message) -> None:
    with pytest.raises(CampaignError, match=message):
        definition(**changes)


def test_unspecified_shares_split_the_rest_equally() -> None:
    d = definition(
        holdout=20, variants=[{"name": "A", "template": "a"}, {"name": "B", "template": "b"}]
    )
    assert d.arms() == [("A", 40.0), ("B", 40.0), ("holdout", 20.0)]
    single = definition(template="t", holdout=5)
    assert single.arms() == [("A", 95.0), ("holdout", 5.0)]


# ---- assignment ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    campaign=st.text(min_size=1, max_size=20),
    ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=60, unique=True),
    shares=st.lists(st.integers(1, 100), min_size=1, max_size=5),
)
def test_assignment_is_deterministic_and_independent_of_the_others(campaign, ids, shares) -> None:
    arms = [(f"v{i}", s) for i, s in enumerate(shares)]
    first = assign(campaign, ids, arms)
    again = assign(campaign, list(reversed(ids)), arms)[::-1]
    alone = [assign(campaign, [i], arms)[0] for i in ids]
    assert list(first) == list(again) == alone
    assert set(first) <= {a for a, _ in arms}


@pytest.mark.parametrize("shares", [(45, 45, 10), (34, 33, 33), (70, 20, 5, 5)])
def test_assignment_matches_the_shares(shares) -> None:
    ids = [f"customer-{i}" for i in range(30_000)]
    arms = [(f"v{i}", s) for i, s in enumerate(shares)]
    got = pd.Series(assign("spring-sale", ids, arms)).value_counts()
    observed = np.array([got.get(a, 0) for a, _ in arms])
    expected = np.array(shares) / sum(shares) * len(ids)
    assert chisquare(observed, expected).pvalue > 0.001


def test_different_campaigns_assign_independently() -> None:
    ids = [str(i) for i in range(20_000)]
    a = assign("one", ids, [("A", 50), ("B", 50)]) == "A"
    b = assign("two", ids, [("A", 50), ("B", 50)]) == "A"
    table = pd.crosstab(a, b).to_numpy()
    assert chisquare(table.ravel(), np.full(4, len(ids) / 4)).pvalue > 0.001
    assert len(set(message_keys("one", ids))) == len(ids)


# ---- sample size -----------------------------------------------------------------------


def test_sample_size_matches_the_textbook_value_and_delivers_the_power() -> None:
    # 10% -> 12% at alpha 0.05 two-sided and 80% power: 3,841 per group (Fleiss et al. 4.14,
    # as computed by G*Power / Stata's `power twoproportions 0.10 0.12`).
    size = sample_size(0.10, 0.02, relative=False)
    assert size.per_arm == size.control == 3841
    # independent check: statsmodels-style arcsine effect size (Cohen's h) gives ~3,835
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    assert abs(2 * ((norm.ppf(0.975) + norm.ppf(0.8)) / h) ** 2 - size.per_arm) < 0.01 * 3841
    # and the power the z-test really has at that size, computed exactly over the binomials
    n = size.per_arm
    k = np.arange(0, int(0.2 * n))
    pa, pb = binom.pmf(k, n, 0.10), binom.pmf(k, n, 0.12)
    x, y = np.meshgrid(k, k, indexing="ij")
    pooled = (x + y) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (y - x) / n / se, 0)
    power = float((np.outer(pa, pb) * (np.abs(z) > norm.ppf(0.975))).sum())
    assert 0.79 < power < 0.81


def test_sample_size_relative_lift_and_unequal_groups() -> None:
    relative = sample_size(0.05, 0.10)  # +10% of 5%
    assert relative.target == pytest.approx(0.055)
    assert relative.per_arm == sample_size(0.05, 0.005, relative=False).per_arm
    small_holdout = sample_size(0.05, 0.10, ratio=0.25)
    assert small_holdout.per_arm > relative.per_arm > small_holdout.control
    with pytest.raises(InputError):
        sample_size(0.5, 0, relative=False)


# ---- plans: exclusions and schedule -----------------------------------------------------


def _audience() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["ok", "supp", "withdrawn", "noconsent", "capped", "noemail", "dup"],
            "email": [
                "ok@x.com",
                "S@x.com",
                "w@x.com",
                "n@x.com",
                "c@x.com",
                None,
                "OK@x.com",
            ],
            "timezone": ["Europe/London"] * 7,
            "best_send_hour": [9, 9, 9, 9, 9, 9, 9],
        }
    )


def _exclusions() -> Exclusions:
    return Exclusions(
        consent=pd.Series(
            {"ok": "granted", "supp": "granted", "withdrawn": "withdrawn", "capped": "granted"}
            | {"noemail": "granted", "dup": "granted"}
        ),
        suppressed=pd.Series({"s@x.com": "hard_bounce"}),
        recent_sends=pd.Series({"capped": 3}),
    )


def test_every_excluded_customer_has_its_reason() -> None:
    d = definition(template="t")
    got = plan(
        d, _audience(), _exclusions(), CampaignSettings(quiet_start=None), datetime(2024, 6, 1)
    )
    reasons = dict(zip(got.customer_id, got.reason.astype(object), strict=True))
    assert reasons == {
        "ok": reasons["ok"],
        "supp": "suppressed: hard_bounce",
        "withdrawn": "consent withdrawn",
        "noconsent": "no marketing consent",
        "capped": "frequency cap: 3 emails in 7 days",
        "noemail": "no valid email address",
        "dup": "duplicate email address",
    }
    assert pd.isna(reasons["ok"])
    assert list(got.status) == ["pending"] + ["skipped"] * 6
    opt_out = plan(
        d, _audience(), _exclusions(), CampaignSettings(consent="opt_out"), datetime(2024, 6, 1)
    )
    assert opt_out.set_index("customer_id").loc["noconsent", "status"] == "pending"


def test_holdout_customers_are_assigned_but_never_pending() -> None:
    audience = pd.DataFrame({"customer_id": [str(i) for i in range(2000)]})
    audience["email"] = audience.customer_id + "@x.com"
    ex = Exclusions(pd.Series(dtype=str), pd.Series(dtype=str), pd.Series(dtype=int))
    d = definition(template="t", holdout=20)
    got = plan(d, audience, ex, CampaignSettings(consent="opt_out"), datetime(2024, 6, 1))
    assert set(got[got.variant == "holdout"].status) == {"holdout"}
    assert set(got[got.variant != "holdout"].status) == {"pending"}
    assert 300 < (got.variant == "holdout").sum() < 500
    assert got[got.status == "holdout"].scheduled_at.isna().all()


def test_best_hour_is_the_next_local_hour_and_quiet_hours_defer() -> None:
    audience = pd.DataFrame(
        {
            "customer_id": ["ldn", "ny", "unknown_hour", "late"],
            "email": ["a@x.com", "b@x.com", "c@x.com", "d@x.com"],
            "timezone": ["Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin"],
            "best_send_hour": [9, 9, None, 23],
        }
    )
    ex = Exclusions(pd.Series(dtype=str), pd.Series(dtype=str), pd.Series(dtype=int))
    d = definition(template="t", send_at="best_hour")
    now = datetime(2024, 1, 15, 12, 0)  # UTC; London 12:00 (GMT), New York 07:00 (EST)
    got = plan(d, audience, ex, CampaignSettings(consent="opt_out"), now).set_index("customer_id")
    assert got.loc["ldn", "scheduled_at"] == pd.Timestamp("2024-01-16 09:00")  # tomorrow 9 GMT
    assert got.loc["ny", "scheduled_at"] == pd.Timestamp("2024-01-15 14:00")  # today 9 EST
    # no best hour: now, but that is 21:00 in Tokyo, quiet (21-8): 08:00 JST = 23:00 UTC
    assert got.loc["unknown_hour", "scheduled_at"] == pd.Timestamp("2024-01-15 23:00")
    # best hour 23:00 CET falls in the quiet hours: 08:00 CET the next morning
    assert got.loc["late", "scheduled_at"] == pd.Timestamp("2024-01-16 07:00")
