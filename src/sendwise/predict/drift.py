"""Population stability index (PSI): has a feature's distribution moved since training?

``PSI = sum over bins of (actual - expected) * ln(actual / expected)``, where ``expected`` is
the share of the training population in a bin and ``actual`` the share of today's scoring
population. Rules of thumb: below 0.1 stable, 0.1-0.2 a moderate shift, above 0.2 a shift
worth a look (the default threshold of :func:`drift_table`).

The bins come from the training population (:func:`psi_reference`, stored with the model as
plain JSON): cut points at its deciles, one more bin above its maximum (so values beyond the
training range show up as drift) and a bin for missing values. Booleans count as 0/1 and
non-finite numbers as missing. A constant column gets three bins: below, at and above its
value. Empty bins would make the logarithm infinite, so shares are floored at :data:`EPSILON`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sendwise.errors import InputError
from sendwise.predict.evaluation import as_floats

EPSILON = 1e-4
"""Floor of a bin share in the PSI sum: an empty bin next to a 1% bin adds about 0.05."""

FORMAT = 1


def _values(values: Any) -> np.ndarray:
    x = as_floats("values", values)
    if x.size == 0:
        raise InputError("cannot compute a PSI reference or a PSI of zero values")
    return np.where(np.isfinite(x), x, np.nan)


def _cuts(x: np.ndarray, bins: int) -> np.ndarray:
    """Right-closed cut points: deciles (for ``bins=10``) up to the maximum."""
    if x.size == 0:
        return np.empty(0)
    if x.min() == x.max():
        c = float(x[0])
        return np.array([np.nextafter(c, -np.inf), c])
    cuts = np.quantile(x, np.arange(1, bins + 1) / bins, method="inverted_cdf")  # data values
    return np.unique(cuts)


def _shares(x: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Share of each bin: ``len(cuts) + 1`` value bins, then the missing bin."""
    missing = np.isnan(x)
    index = np.searchsorted(cuts, x[~missing], side="left")  # v <= cut[i] -> bin i
    counts = np.bincount(index, minlength=cuts.size + 1).astype(np.float64)
    return np.append(counts, missing.sum()) / x.size


def psi_reference(values: Any, bins: int = 10) -> dict[str, Any]:
    """The JSON-serialisable binning and bin shares of a training population's feature."""
    if not (isinstance(bins, int) and bins >= 2):
        raise InputError(f"bins must be an integer of at least 2, got {bins!r}")
    x = _values(values)
    cuts = _cuts(x[~np.isnan(x)], bins)
    shares = _shares(x, cuts)
    return {
        "format": FORMAT,
        "n": int(x.size),
        "cuts": [float(c) for c in cuts],
        "shares": [float(s) for s in shares[:-1]],
        "missing_share": float(shares[-1]),
    }


def _reference(reference: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    try:
        cuts = np.asarray(reference["cuts"], dtype=np.float64).reshape(-1)
        shares = np.asarray([*reference["shares"], reference["missing_share"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a PSI reference (see psi_reference): {exc!r}") from None
    if reference.get("format") != FORMAT or shares.size != cuts.size + 2:
        raise InputError("not a PSI reference of this version (see psi_reference)")
    if np.any(np.diff(cuts) <= 0) or np.any(shares < 0) or not np.isclose(shares.sum(), 1):
        raise InputError("corrupt PSI reference: cuts must increase and shares sum to 1")
    return cuts, shares


def psi(reference: Mapping[str, Any], values: Any) -> float:
    """PSI of ``values`` (today's population) against a :func:`psi_reference`."""
    cuts, expected = _reference(reference)
    actual = _shares(_values(values), cuts)
    e, a = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_table(
    references: Mapping[str, Mapping[str, Any]], frame: pd.DataFrame, threshold: float = 0.2
) -> pd.DataFrame:
    """PSI of each referenced feature in ``frame``: columns feature, psi, flagged (psi above
    ``threshold``), the largest shift first. A referenced feature ``frame`` lacks is an
    :class:`InputError` naming it."""
    missing = sorted(set(references) - set(frame.columns))
    if missing:
        names = ", ".join(missing)
        raise InputError(f"the scoring data lacks feature(s) of the reference: {names}")
    rows = [(name, psi(ref, frame[name])) for name, ref in references.items()]
    table = pd.DataFrame(rows, columns=["feature", "psi"]).astype({"psi": "float64"})
    table["flagged"] = table["psi"] > threshold
    table = table.sort_values(["psi", "feature"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)
