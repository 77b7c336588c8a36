"""BTYD fit time on a large simulated customer base.

Target: fit BG/NBD on 1,000,000 customers in under 30 s. The customers are simulated first
(not timed) with known parameters, observed for 1 to 52 weeks; the timed part is ``fit``.
Variants: purchase times as drawn (continuous, so almost no two customers share (x, t_x, T),
the worst case) and rounded down to whole days, as the features give them (identical rows are
fitted once, with a weight). MBG/NBD is fitted on the same customers; Pareto/NBD, whose 2F1 has
no closed-form derivative (central differences, nine likelihoods per gradient), on its own
simulated customers in whole days.

    python bench/bench_btyd.py [--customers 1000000] [--seed 0] [--models bgnbd,mbgnbd,pareto]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sendwise.predict import (
    BetaGeoFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
    simulate_bgnbd,
    simulate_pareto_nbd,
)

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_PARETO = {"r": 0.55, "alpha": 10.0, "s": 0.6, "beta": 12.0}


def timed(label: str, model, x, tx, t_end) -> None:
    start = time.perf_counter()
    model.fit(x, tx, t_end)
    seconds = time.perf_counter() - start
    fitted = ", ".join(f"{k}={v:.4f}" for k, v in model.params_.items())
    verdict = "OK" if seconds < 30 else "SLOWER THAN TARGET"
    print(
        f"{label:>32}: fit in {seconds:.2f} s [{verdict}, target < 30 s]; {fitted}; "
        f"log-likelihood {model.log_likelihood_:.1f}; {model.n_iter_} iterations",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="bgnbd,mbgnbd,pareto")
    args = parser.parse_args()
    n, models = args.customers, set(args.models.split(","))

    T = np.random.default_rng(args.seed).integers(7, 365, n) / 7  # weeks, whole days
    start = time.perf_counter()
    x, tx, t_end = simulate_bgnbd(n, *TRUE.values(), T, seed=args.seed + 1)
    print(f"simulated {n:,} customers in {time.perf_counter() - start:.2f} s (true {TRUE})")
    days = np.floor(tx * 7) / 7  # recency in whole days, as from a transaction log
    for label, recency in (("continuous times", tx), ("whole days", days)):
        if "bgnbd" in models:
            timed(f"BG/NBD, {label}", BetaGeoFitter(), x, recency, t_end)
        if "mbgnbd" in models:
            timed(f"MBG/NBD, {label}", ModifiedBetaGeoFitter(), x, recency, t_end)
    if "pareto" in models:
        x, tx, t_end = simulate_pareto_nbd(n, *TRUE_PARETO.values(), T, seed=args.seed + 2)
        print(f"Pareto/NBD customers simulated (true {TRUE_PARETO})")
        timed("Pareto/NBD, whole days", ParetoNBDFitter(), x, np.floor(tx * 7) / 7, t_end)


if __name__ == "__main__":
    main()
