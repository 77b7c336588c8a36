"""BG/NBD fit time on a large simulated customer base.

Target: fit 1,000,000 customers in under 30 s. The customers are simulated first (not timed)
with known parameters, observed for 1 to 52 weeks (whole days); the timed part is
``BetaGeoFitter().fit``. Two variants: purchase times as drawn (continuous, so almost no two
customers share (x, t_x, T), the worst case) and rounded down to whole days, as
``summary_from_transactions`` gives them (identical rows are fitted once, with a weight).

    python bench/bench_btyd.py [--customers 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sendwise.predict import BetaGeoFitter, simulate_bgnbd

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.customers

    T = np.random.default_rng(args.seed).integers(7, 365, n) / 7  # weeks, whole days
    start = time.perf_counter()
    x, tx, t_end = simulate_bgnbd(n, *TRUE.values(), T, seed=args.seed + 1)
    print(f"simulated {n:,} customers in {time.perf_counter() - start:.2f} s (true {TRUE})")

    days = np.floor(tx * 7) / 7  # recency in whole days, as from a transaction log
    for label, recency in (("continuous times", tx), ("whole days", days)):
        start = time.perf_counter()
        model = BetaGeoFitter().fit(x, recency, t_end)
        seconds = time.perf_counter() - start
        fitted = ", ".join(f"{k}={v:.4f}" for k, v in model.params_.items())
        verdict = "OK" if seconds < 30 else "SLOWER THAN TARGET"
        print(
            f"{label:>16}: fit in {seconds:.2f} s [{verdict}, target < 30 s]; {fitted}; "
            f"log-likelihood {model.log_likelihood_:.1f}; {model.n_iter_} iterations"
        )


if __name__ == "__main__":
    main()
