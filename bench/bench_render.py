"""Email rendering speed: complete messages per second on one core.

Target: at least 5,000 complete messages per second per core (subject, preheader, HTML with
inlined CSS, text part, MIME bytes), on the starter newsletter with 6 recommendations. A small
shop is simulated and profiled first (not timed), with deterministic stand-in scores so that
every offer variant of the newsletter is used. Timed, in this one process (one core):

- compile: the template compiled once (flatten, CSS inlining, text part, Jinja);
- tokens: reading every customer's tokens (profile, slot variants, recommendations) in bulk;
- render: subject + preheader + HTML + text for every customer;
- render + MIME: the same plus the message bytes, by the builder every send and preview uses
  (sendwise.delivery.mime: compose, then build_mime; no click tracking, no DKIM).

Rates are messages per CPU-second of this process (time.process_time), which is what one core
delivers even when other jobs share the machine; wall-clock rates are printed beside them.

    python bench/bench_render.py [--customers 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sendwise.config import init_project, load_settings
from sendwise.content.render import Renderer
from sendwise.delivery.mime import build_mime, compose
from sendwise.ingest.load import ingest
from sendwise.profiles import build_profiles
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE

TEMPLATE = "newsletter.html"
TARGET = 5_000


def stand_in_scores(wh: Warehouse) -> None:
    """p_purchase and churn_risk spread over 0..1 (some missing) until the models fill them."""
    p = wh.table("profile").to_pandas()
    n = p.customer_id.str[1:].astype(int).to_numpy()
    p["p_purchase"] = np.where(n % 11 == 0, np.nan, (n * 37 % 100) / 100)
    p["churn_risk"] = np.where(n % 13 == 0, np.nan, (n * 53 % 100) / 100)
    wh.con.create_table("profile", p, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        init_project(folder)
        settings = load_settings(folder)
        settings.segments.clusters = False
        shop = simulate_shop(customers=args.customers, days=180, seed=7)
        paths = shop.write(folder / "simulated")
        with Warehouse.from_settings(settings) as wh:
            for name in LOADABLE:
                if name in paths:
                    ingest(wh, settings, paths[name], table=name)
            build_profiles(wh, settings)
            stand_in_scores(wh)
            run(settings, wh, args.repeat)


def run(settings, wh, repeat: int) -> None:
    renderer = Renderer(settings, wh)
    start = time.perf_counter()
    compiled = renderer.template(TEMPLATE)
    print(f"compile {TEMPLATE}: {1000 * (time.perf_counter() - start):.1f} ms (once)")

    start = time.perf_counter()
    tokens = list(renderer.tokens(TEMPLATE, None))
    seconds = time.perf_counter() - start
    n = len(tokens)
    print(f"tokens: {n:,} customers in {seconds:.2f} s ({n / seconds:,.0f} customers/s)")
    recs = {len(t["recommendations"]) for _, t in tokens}
    print(f"recommendations per message: {sorted(recs)}")
    print(f"variants: {renderer.variant_counts(TEMPLATE)}")

    links = {cid: renderer.default_links(cid) for cid, _ in tokens}
    sender = settings.content.shop.sender
    best = {"render": (0.0, 0.0), "full": (0.0, 0.0)}
    size = 0
    for _ in range(repeat):
        for kind in best:
            wall, cpu = time.perf_counter(), time.process_time()
            for cid, tok in tokens:
                email = renderer.render_context(compiled, tok, links[cid])
                if kind == "full":
                    to = tok["customer"]["email"] or "x@example.com"
                    msg = compose(email, key=cid, to=to, sender=sender, links=links[cid])
                    size = len(build_mime(msg))
            rates = (n / (time.perf_counter() - wall), n / (time.process_time() - cpu))
            best[kind] = (max(best[kind][0], rates[0]), max(best[kind][1], rates[1]))
    for kind, label in (
        ("render", "render (subject, preheader, HTML, text)"),
        ("full", "render + MIME (complete messages)"),
    ):
        wall_rate, cpu_rate = best[kind]
        print(f"{label}: {cpu_rate:,.0f} messages per CPU-second ({wall_rate:,.0f}/s wall clock)")
    verdict = "OK" if best["full"][1] >= TARGET else "SLOWER THAN TARGET"
    print(
        f"complete messages per core: {best['full'][1]:,.0f} [{verdict}, target >= {TARGET:,}]"
        f"; message size {size / 1024:.1f} KB; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
