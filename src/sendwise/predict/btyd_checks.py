"""Why a fitted purchase model (BG/NBD, MBG/NBD, Pareto/NBD) must not be served silently.

A BTYD likelihood often peaks at the edge of its parameter space: on a shop whose repeat
buyers all keep buying, BG/NBD's drop-out probability goes to zero (a -> 0, b -> large), the
model becomes a plain NBD and every repeat buyer gets ``p_alive`` = 1. Each check returns a
flag, ``"code: explanation"``; a fit with no flag is usable.

- ``at_bound``: a parameter within a factor 10 of the optimiser's box [1e-6, 1e6];
- ``constant_p_alive``: ``p_alive`` spans less than ``MIN_SPREAD`` over the repeat buyers;
- ``not_converged``: the optimiser stopped with a gradient above tolerance, or the
  log-likelihood is not finite;
- ``no_repeat_buyers``: fewer than two customers bought twice, nothing separates them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sendwise.predict.btyd import PURCHASE_LOG_BOUNDS

MARGIN = float(np.log(10.0))  # "at the bound": within a factor of 10 of it
MIN_SPREAD = 0.01  # p_alive of repeat buyers must span at least this much


def fit_flags(model: Any, frequency: Any, recency: Any, T: Any) -> list[str]:
    """Flags of a fitted purchase model on the customers it was fitted on (empty: usable)."""
    flags = []
    low, high = PURCHASE_LOG_BOUNDS
    for name, value in model.params_.items():
        if not np.isfinite(value) or value <= 0:
            flags.append(f"at_bound: {name} = {value!r} is not a positive number")
        elif np.log(value) < low + MARGIN or np.log(value) > high - MARGIN:
            flags.append(
                f"at_bound: {name} = {value:.3g} sits at the edge of the optimiser's box"
                f" [{np.exp(low):.0e}, {np.exp(high):.0e}]"
            )
    if not getattr(model, "converged_", True) or not np.isfinite(model.log_likelihood_):
        flags.append(
            f"not_converged: the optimiser stopped before the gradient vanished"
            f" (log-likelihood {model.log_likelihood_:.4g})"
        )
    x = np.asarray(frequency, dtype=np.float64)
    repeat = x > 0
    if repeat.sum() < 2:
        flags.append(f"no_repeat_buyers: {int(repeat.sum())} customer(s) bought more than once")
        return flags
    alive = model.probability_alive(
        x[repeat], np.asarray(recency, dtype=np.float64)[repeat],
        np.asarray(T, dtype=np.float64)[repeat],
    )  # fmt: skip
    spread = float(np.nanmax(alive) - np.nanmin(alive)) if np.isfinite(alive).any() else 0.0
    if not spread >= MIN_SPREAD:
        flags.append(
            f"constant_p_alive: p_alive of the {int(repeat.sum()):,} repeat buyers spans only"
            f" {spread:.2g} ({np.nanmin(alive):.4f} to {np.nanmax(alive):.4f})"
        )
    return flags
