"""Experiments as training data: who was sent the email (``treatment``), what they did
(``outcome``) and what was known of them before (``X``).

Two sources:

* :func:`read_hillstrom` / :func:`hillstrom_features`: Kevin Hillstrom's MineThatData e-mail
  experiment (``recency, history_segment, history, mens, womens, zip_code, newbie, channel,
  segment, visit, conversion, spend``). ``segment`` is the arm (``Mens E-Mail``,
  ``Womens E-Mail``, ``No E-Mail``); ``visit``, ``conversion`` and ``spend`` are the outcomes in
  the two weeks after. The features are read by name from the other columns only, so a file
  without ``segment`` and the outcomes scores the same as one with them.
* :func:`experiment_from_units`: a past campaign with a holdout, one row per assigned customer
  (the ``arm`` and outcome columns of ``campaigns.attribution.campaign_units``) joined to the
  customers' features as of the send.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sendwise.errors import FormatError, InputError, SourceNotFoundError

HOLDOUT = "holdout"
HILLSTROM_ARMS = {"Mens E-Mail": "Mens", "Womens E-Mail": "Womens", "No E-Mail": HOLDOUT}
HILLSTROM_OUTCOMES = ("visit", "conversion", "spend")
ZIP_CODES = ("Surburban", "Urban", "Rural")  # sic: the file spells it so
CHANNELS = ("Phone", "Web", "Multichannel")
NUMERIC = ("recency", "history", "mens", "womens", "newbie")
HILLSTROM_FEATURES = (*NUMERIC, "zip_code", "channel")
"""The columns the models read; ``history_segment`` is a binned copy of ``history``."""


@dataclass
class Experiment:
    """One randomised experiment as a training set (rows aligned)."""

    X: pd.DataFrame
    treatment: np.ndarray  # 1 = sent the arm's email, 0 = held out
    y: np.ndarray
    arm: str
    outcome: str

    def __len__(self) -> int:
        return len(self.y)


def _open(path: Path, columns: tuple[str, ...] | None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"no file at {path}")
    try:
        header = pd.read_csv(path, nrows=0).columns
        missing = [c for c in (columns or ()) if c not in header]
        if missing:
            raise InputError(f"{path.name} lacks the column(s) {', '.join(missing)}")
        return pd.read_csv(
            path, usecols=list(columns) if columns else None, dtype=str, keep_default_na=False
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise FormatError(f"cannot read {path.name} as CSV ({exc})") from None


def _bad(frame: pd.DataFrame, column: str, mask: pd.Series, expected: str) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask.to_numpy())[0])
        raise InputError(
            f"line {i + 2}, column {column}: {frame[column].iloc[i]!r} is not "
            f"{expected} ({int(mask.sum())} such row(s))"
        )


def hillstrom_features(raw: pd.DataFrame) -> pd.DataFrame:
    """The model's features from Hillstrom's columns (read as text); InputError naming the
    first bad line and column (the header is line 1)."""
    out = pd.DataFrame(index=raw.index)
    for col in NUMERIC:
        value = pd.to_numeric(raw[col].str.strip(), errors="coerce")
        _bad(raw, col, value.isna() | ~np.isfinite(value.fillna(0)), "a number")
        out[col] = value.astype(np.float64)
    for col, levels in (("zip_code", ZIP_CODES), ("channel", CHANNELS)):
        code = raw[col].str.strip().map({v: float(i) for i, v in enumerate(levels)})
        _bad(raw, col, code.isna(), f"one of {', '.join(levels)}")
        out[col] = code
    return out


def read_hillstrom_features(path: Path) -> pd.DataFrame:
    """Only the feature columns of a file in Hillstrom's layout (arm and outcomes unread)."""
    return hillstrom_features(_open(path, HILLSTROM_FEATURES))


def read_hillstrom(path: Path, arm: str = "Womens", outcome: str = "visit") -> Experiment:
    """``arm`` (Mens or Womens) against the no-e-mail group, on ``outcome``."""
    arms = [a for a in HILLSTROM_ARMS.values() if a != HOLDOUT]
    if arm not in arms:
        raise InputError(f"arm is one of {', '.join(arms)}, not {arm!r}")
    if outcome not in HILLSTROM_OUTCOMES:
        raise InputError(f"outcome is one of {', '.join(HILLSTROM_OUTCOMES)}, not {outcome!r}")
    raw = _open(path, (*HILLSTROM_FEATURES, "segment", outcome))
    given = raw["segment"].str.strip().map(HILLSTROM_ARMS)
    _bad(raw, "segment", given.isna(), f"one of {', '.join(HILLSTROM_ARMS)}")
    y = pd.to_numeric(raw[outcome], errors="coerce")
    _bad(raw, outcome, y.isna(), "a number")
    keep = given.isin([arm, HOLDOUT]).to_numpy()
    raw = raw[keep].reset_index(drop=True)
    treatment = (given[keep] == arm).to_numpy().astype(np.int8)
    return Experiment(
        hillstrom_features(raw), treatment, y[keep].to_numpy(np.float64), arm, outcome
    )


def experiment_from_units(
    units: pd.DataFrame, features: pd.DataFrame, *, arm: str, outcome: str
) -> Experiment:
    """A past campaign's customers of ``arm`` and of the holdout, with their features.

    ``units``: customer_id, arm, the outcome (``campaign_units``); ``features``: one row per
    customer indexed by customer_id, numeric columns only. Customers without features are
    refused by name (a training set never drops rows silently).
    """
    for col in ("customer_id", "arm", outcome):
        if col not in units.columns:
            raise InputError(f"the campaign's outcomes lack the column {col}")
    arms = sorted(set(units["arm"]))
    if arm not in arms or HOLDOUT not in arms:
        raise InputError(
            f"an uplift training set needs arm {arm!r} and a holdout; the "
            f"campaign has {', '.join(arms)}"
        )
    rows = units[units["arm"].isin([arm, HOLDOUT])].reset_index(drop=True)
    unknown = ~rows["customer_id"].isin(features.index)
    if unknown.any():
        raise InputError(
            f"{int(unknown.sum())} customer(s) of the campaign have no features, "
            f"e.g. {rows.loc[unknown, 'customer_id'].iloc[0]}"
        )
    X = features.loc[rows["customer_id"]].reset_index(drop=True).astype(np.float64)
    treatment = (rows["arm"] == arm).to_numpy().astype(np.int8)
    y = rows[outcome].astype(np.float64).to_numpy()
    return Experiment(X, treatment, y, arm, outcome)
