"""Console page speed on a large shop: each page's answer time, target under 300 ms at
1,000,000 customers (issue 17).

The shop: a small simulated shop is built (or --source, an already built project is used),
and its published snapshot is replicated into a new project's store up to --customers
customers (each copy a real profile with a new id and address), with its catalogue, its
models registry and templates; a campaign to 30% of the customers is planned in the store with
its send, open and click events. The service runs as in production (uvicorn, in a process of
its own); a marketer logs in and each page is asked --repeat times. Printed per page: the
first answer (cold: caches empty) and the median and worst of the rest (warm), each with the
service process's CPU time, and the machine's load beside the run. Ten newer campaigns are
added, so the big campaign is not among those the service counts at start-up: its page's
first answer counts it in the store. With --fresh, every page is asked of a service process
of its own, started for it, as its first page after the log-in (the service's warm-up done):
no other page warmed anything for it. The snapshot
gets what `sendwise publish` writes for the console (the segments figures in its meta, the
Parquet columns file): printed first are the rule count's answer before the service has loaded
the columns ("getting ready") and how long after the service answered they were loaded.

    python bench/bench_console.py [--customers 1000000] [--repeat 7] [--source FOLDER]
                                  [--keep FOLDER] [--fresh] [--only TEXT]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

PORT = 18471


def build_source(folder: Path) -> Path:
    from sendwise.demo import run_demo

    run_demo(folder, None, customers=1500, days=300, seed=7)
    return folder


def replicate(source: Path, target: Path, customers: int) -> tuple[str, str]:
    """The big project; returns (a customer id, the campaign id)."""
    from sendwise.config import init_project, load_settings
    from sendwise.console.users import add_user
    from sendwise.serving.console_digest import SnapshotDigest
    from sendwise.store import open_store
    from sendwise.store.console import snapshot_rows
    from sendwise.store.records import utcnow

    init_project(target)
    for folder in ("models", "templates"):
        shutil.rmtree(target / folder, ignore_errors=True)
        shutil.copytree(source / folder, target / folder)
    src, dst = load_settings(source), load_settings(target)
    with open_store(src) as s, open_store(dst) as d:
        v = s.snapshots.current_version()
        info = s.snapshots.info(v)
        rows = list(snapshot_rows(s, v))
        products = s.snapshots.products(v, [p for p in info.meta.get("popular", [])])
        now = utcnow()
        new = d.snapshots.begin(at=now, as_of=info.as_of, data_end=info.data_end, meta=info.meta)
        sizes: dict[str, int] = {}
        digest = SnapshotDigest()  # what `sendwise publish` computes for the console
        t0 = time.perf_counter()
        batch, members = [], []
        for i in range(customers):
            r = rows[i % len(rows)]
            cid = f"B{i:07d}"
            prof = dict(r["profile"], customer_id=cid, email=f"b{i}@bench.example")
            batch.append({"customer_id": cid, "profile": prof, "scores": r["scores"],
                          "segments": r["segments"], "reasons": []})  # fmt: skip
            for seg in r["segments"]:
                members.append({"segment": seg, "customer_id": cid})
                sizes[seg] = sizes.get(seg, 0) + 1
            if len(batch) == 20_000:
                digest.add(batch)
                d.snapshots.write(new, "profile", batch)
                d.snapshots.write(new, "segment_member", members)
                batch, members = [], []
        if batch:
            digest.add(batch)
            d.snapshots.write(new, "profile", batch)
            d.snapshots.write(new, "segment_member", members)
        d.snapshots.write(
            new, "product", [{"product_id": k, "data": p} for k, p in products.items()]
        )
        figures = digest.finish(dst, new)
        meta = {**info.meta, "segments": sizes, "console": figures}
        d.snapshots.switch(new, customers=customers, at=now, meta=meta)
        print(f"snapshot of {customers:,} customers written in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        cid = plan_campaign(d, customers, now)
        print(f"campaign planned with its events in {time.perf_counter() - t0:.0f} s")
        password = secrets.token_urlsafe(16)
        add_user(d, "bench", "marketer", password)
    (target / ".bench-password").write_text(password)
    return "B0000001", cid


def plan_campaign(store, customers: int, now) -> str:
    from sendwise.campaigns.definition import parse_definition
    from sendwise.store.repositories import CampaignRecord

    defn = parse_definition({"name": "Bench campaign", "audience": {"segment": "Champions"},
                             "variants": [{"name": "A", "template": "newsletter.html", "share": 45},
                                          {"name": "B", "template": "welcome.html", "share": 45}],
                             "holdout": 10})  # fmt: skip
    cid = defn.campaign_id
    store.campaigns.save(
        CampaignRecord(cid, defn.name, "created", defn.model_dump(mode="json")), now
    )
    rng = random.Random(7)
    n = int(customers * 0.3)
    arms = rng.choices(["A", "B", "holdout"], weights=[45, 45, 10], k=n)
    plan, events = [], []
    for i, arm in enumerate(arms):
        key = f"bench{i:010d}"
        sent = arm != "holdout"
        plan.append({"message_key": key, "customer_id": f"B{i:07d}", "email": f"b{i}@bench.example",
                     "variant": arm, "template": None, "status": "sent" if sent else "holdout",
                     "reason": None, "scheduled_at": now, "timezone": "UTC"})  # fmt: skip
        if not sent:
            continue
        at = now - timedelta(days=rng.randrange(0, 30))
        base = {"customer_id": f"B{i:07d}", "email": f"b{i}@bench.example", "message_id": key,
                "campaign_id": cid, "variant": arm, "url": None, "user_agent": None,
                "is_machine": False, "reason": None}  # fmt: skip
        events.append({**base, "event_id": f"s{key}", "type": "send", "occurred_at": at})
        if rng.random() < 0.25:
            events.append(
                {
                    **base,
                    "event_id": f"o{key}",
                    "type": "open",
                    "occurred_at": at + timedelta(hours=2),
                }
            )
        if rng.random() < 0.05:
            events.append(
                {
                    **base,
                    "event_id": f"c{key}",
                    "type": "click",
                    "occurred_at": at + timedelta(hours=3),
                }
            )
    store.messages.add_plan(cid, plan, now)
    store.campaigns.set_status(cid, "done", at=now)
    for i in range(0, len(events), 50_000):
        store.events.add(events[i : i + 50_000])
    return cid


def newer_campaigns(project: Path, count: int = 10) -> None:
    """``count`` small sent campaigns newer than the big one (kept when there already)."""
    from sendwise.campaigns.definition import parse_definition
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.store.records import utcnow
    from sendwise.store.repositories import CampaignRecord

    with open_store(load_settings(project)) as store:
        for k in range(count):
            defn = parse_definition({"name": f"Bench newer {k}",
                                     "audience": {"segment": "Champions"},
                                     "variants": [{"name": "A", "template": "newsletter.html",
                                                   "share": 100}]})  # fmt: skip
            if store.campaigns.get(defn.campaign_id) is not None:
                continue
            now = utcnow()
            store.campaigns.save(
                CampaignRecord(
                    defn.campaign_id, defn.name, "created", defn.model_dump(mode="json")
                ),
                now,
            )
            plan = [{"message_key": f"newer{k}-{i}", "customer_id": f"B{i:07d}",
                     "email": f"b{i}@bench.example", "variant": "A", "template": None,
                     "status": "sent", "reason": None, "scheduled_at": now, "timezone": "UTC"}
                    for i in range(100)]  # fmt: skip
            store.messages.add_plan(defn.campaign_id, plan, now)
            store.campaigns.set_status(defn.campaign_id, "done", at=now)


def cpu_of(pid: int) -> float:
    """CPU seconds the process has used (user and system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def serve(project: Path) -> subprocess.Popen:
    env = dict(os.environ, SENDWISE_CONSOLE__SECURE_COOKIE="false")
    cmd = [
        sys.executable,
        "-m",
        "sendwise.cli",
        "serve",
        "--project",
        str(project),
        "--port",
        str(PORT),
    ]
    log = open(project / "bench-serve.log", "wb")  # noqa: SIM115 (the service's lifetime)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the service did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="build (or reuse) the big project here")
    ap.add_argument("--fresh", action="store_true", help="a new service process for each page")
    ap.add_argument("--only", default="", help="only the pages whose path holds this text")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    try:
        target = args.keep or tmp / "big"
        if not (target / ".bench-password").exists():
            source = args.source or build_source(tmp / "small")
            customer, cid = replicate(source, target, args.customers)
        else:
            customer, cid = "B0000001", "bench-campaign"
        newer_campaigns(target)
        password = (target / ".bench-password").read_text()
        pages = [
            "/overview", "/segments", "/segments?measure=revenue",
            "/segments/count?rule=frequency%20%3E%3D%202%20and%20p_purchase%20%3E%200.3",
            f"/customers/{customer}", "/customers?q=b1%40bench.example", "/models",
            "/campaigns", "/campaigns/new", f"/campaigns/{cid}", "/templates",
            f"/templates?name=newsletter.html&customer={customer}", "/data",
        ]  # fmt: skip
        pages = [p for p in pages if args.only in p]
        print(f"{'page':<72} {'first ms':>9} {'(CPU)':>6} {'median ms':>10} {'(CPU)':>6}"
              f" {'worst ms':>9}  machine")  # fmt: skip
        for group in [[p] for p in pages] if args.fresh else [pages]:
            proc = serve(target)
            started = time.perf_counter()
            try:
                c = login(password)
                if args.fresh:
                    wait_idle(proc.pid)
                else:
                    ready(c, started)
                for page in group:
                    run_page(c, page, proc.pid, args.repeat)
            finally:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


BASE = f"http://127.0.0.1:{PORT}/console"


def login(password: str) -> httpx.Client:
    c = httpx.Client(timeout=600)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get(BASE + "/login").text).group(1)
    r = c.post(BASE + "/login", data={"csrf": token, "name": "bench", "password": password})
    assert r.status_code == 303, r.text
    return c


def ready(c: httpx.Client, started: float) -> None:
    """Asks the rule count once before the columns are loaded, then waits until they are."""
    count = BASE + "/segments/count?rule=frequency%20%3E%3D%202"
    t = time.perf_counter()
    first = c.get(count).json()
    print(f"rule count before the columns are loaded: {1000 * (time.perf_counter() - t):.0f} ms,"
          f" {'getting ready' if first.get('preparing') else 'counted'}")  # fmt: skip
    while c.get(count).json().get("preparing"):
        time.sleep(0.2)
    print(f"columns loaded {time.perf_counter() - started:.1f} s after the service answered")


def wait_idle(pid: int, quiet: float = 0.05, span: float = 2.0) -> None:
    """Until the service used under ``quiet`` of a core over ``span`` seconds: its warm-up
    (events folded, campaigns counted, templates warmed, columns loaded) is over. No page is
    asked for it, so none is warmed."""
    before = cpu_of(pid)
    while True:
        time.sleep(span)
        now = cpu_of(pid)
        if now - before < quiet * span:
            return
        before = now


def run_page(c: httpx.Client, page: str, pid: int, repeat: int) -> None:
    times, cpus = [], []
    for _ in range(repeat):
        c0, t = cpu_of(pid), time.perf_counter()
        r = c.get(BASE + page, follow_redirects=True)
        times.append(1000 * (time.perf_counter() - t))
        cpus.append(1000 * (cpu_of(pid) - c0))
        assert r.status_code == 200, (page, r.status_code, r.text[:300])
    warm, warm_cpu = times[1:], cpus[1:]
    print(f"{page:<72} {times[0]:>9.0f} {cpus[0]:>6.0f} {statistics.median(warm):>10.0f}"
          f" {statistics.median(warm_cpu):>6.0f} {max(warm):>9.0f}  {load()}")  # fmt: skip


if __name__ == "__main__":
    main()
