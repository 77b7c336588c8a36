"""Per-stage cost of the batch plane as a shop grows: the figures behind docs/scaling.md.

Each stage runs as the real command (`sendwise simulate`, `segment`, `train`, `score`,
`recommend`, `publish`) in its own process on a fresh project with the default DuckDB warehouse
and SQLite store, so the wall time, CPU time and peak memory printed are those of that command
alone. The sizes are run one after another and each stage's growth from the first size to the
last is printed (1.0 = constant, 10.0 = linear for 100k -> 1M).

    python bench/bench_scaling.py                        # 100,000 then 1,000,000 customers
    python bench/bench_scaling.py --sizes 20000 100000   # a quick look
    python bench/bench_scaling.py --keep DIR             # keep the projects (DIR/shop-<n>)

The load average before each stage is printed beside it: on a shared machine the wall time
follows the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STAGES: list[tuple[str, list[str]]] = [
    ("simulate + load", ["simulate", "--customers", "{n}", "--seed", "7"]),
    ("features, RFM, segments", ["segment"]),
    ("train (rolling backtest)", ["train"]),
    ("score", ["score"]),
    ("recommend", ["recommend", "--no-evaluate"]),
    ("publish to the store", ["publish"]),
]


@dataclass
class Run:
    stage: str
    wall: float
    cpu: float
    peak_gib: float
    load: float
    ok: bool


def sendwise_bin() -> str:
    here = Path(sys.executable).parent / "sendwise"
    return str(here) if here.exists() else "sendwise"


def run_stage(stage: str, args: list[str], project: Path, n: int) -> Run:
    argv = [sendwise_bin(), *(a.format(n=n) for a in args), "--project", str(project), "--quiet"]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    ok = os.waitstatus_to_exitcode(status) == 0
    if not ok and proc.stderr is not None:
        print(f"  {stage} failed: {proc.stderr.read().decode(errors='replace')[-400:]}")
    # ru_maxrss is in KiB on Linux
    return Run(stage, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, load, ok)


def run_size(n: int, root: Path) -> list[Run]:
    project = root / f"shop-{n}"
    if project.exists():
        shutil.rmtree(project)
    subprocess.run([sendwise_bin(), "init", str(project)], check=True, stdout=subprocess.DEVNULL)
    runs = []
    for stage, args in STAGES:
        run = run_stage(stage, args, project, n)
        runs.append(run)
        print(
            f"{n:>10,} {stage:<26} {run.wall:8.1f} s wall {run.cpu:8.1f} s CPU "
            f"{run.peak_gib:6.2f} GiB peak  load {run.load:4.1f}" + ("" if run.ok else "  FAILED"),
            flush=True,
        )
        if not run.ok:
            break
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--keep", type=Path, help="folder for the projects (kept afterwards)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="sendwise-scaling-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{'customers':>10} {'stage':<26} {'wall':>10} {'CPU':>14} {'memory':>15}")
    results = {n: run_size(n, root) for n in args.sizes}
    if len(args.sizes) > 1:
        first, last = args.sizes[0], args.sizes[-1]
        print(f"\ngrowth from {first:,} to {last:,} customers (x{last / first:g} customers):")
        for a, b in zip(results[first], results[last], strict=False):
            print(
                f"  {a.stage:<26} wall x{b.wall / a.wall:5.1f}  CPU x{b.cpu / a.cpu:5.1f}  "
                f"memory x{b.peak_gib / a.peak_gib:4.1f}"
            )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
