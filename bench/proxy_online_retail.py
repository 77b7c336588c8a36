"""The development proxy of issue 14: Online Retail, one horizon before the file's end.

Runs the new user's procedure from a clean project (``sendwise init``, ``ingest --preset
online-retail``, ``build --as-of A --horizon H``, ``export profiles``) and judges the exported
``p_purchase`` and ``churn_risk`` on what the raw file says happened in [A, A + H), on the
customers who had bought before A. Next to it, the anchors a shop could write in ten lines,
computed from the raw file with pandas and scikit-learn only (no sendwise code), each trained on
the freshest window (features at A - H, labels on [A - H, A)) and applied at A:

- ``logistic RFM``: logistic regression on ten RFM counts;
- ``logistic RFM + gaps + trend``: the same with inter-purchase gaps and the previous window;
- ``frequency``: the number of invoices alone.

    python bench/proxy_online_retail.py [--as-of 2011-06-12] [--horizon 90] [--keep DIR]

Times are compared in UTC, as the warehouse stores them (the file is UK local time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DATA = Path(__file__).resolve().parents[1] / "../shared/data/online_retail"
FILE = "online_retail_2010-12-01_2011-09-09.csv.gz"


def sendwise(folder: Path, *args: str) -> None:
    cmd = [sys.executable, "-c", "from sendwise.cli.app import main; main()", *args]
    env = {**os.environ, "SENDWISE_PROJECT": str(folder)}
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"sendwise {args[0]} failed: {done.stderr.strip().splitlines()[-1]}")


def run_procedure(folder: Path, data: Path, as_of: str, horizon: int) -> pd.DataFrame:
    out = folder / "profiles.parquet"
    if not out.exists():
        t = time.perf_counter()
        sendwise(folder, "init", str(folder))
        sendwise(folder, "ingest", str(data), "--preset", "online-retail")
        sendwise(folder, "build", "--as-of", as_of, "--horizon", str(horizon))
        sendwise(folder, "export", "profiles", "--out", str(out))
        print(f"procedure ran in {time.perf_counter() - t:.0f} s")
    return pd.read_parquet(out)


def invoices(data: Path) -> pd.DataFrame:
    raw = pd.read_csv(data, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    raw = raw[raw["CustomerID"].notna() & ~raw["InvoiceNo"].str.startswith(("C", "A"))]
    raw["customer_id"] = raw["CustomerID"].str.replace(r"\.0+$", "", regex=True)
    local = pd.to_datetime(raw["InvoiceDate"]).dt.tz_localize("Europe/London")
    raw["at"] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    raw["value"] = raw["Quantity"] * raw["UnitPrice"]
    return raw.groupby("InvoiceNo").agg(
        customer_id=("customer_id", "first"), at=("at", "min"), value=("value", "sum"),
        items=("Quantity", "sum"), products=("StockCode", "nunique"),
    )  # fmt: skip


def rfm(inv: pd.DataFrame, at: pd.Timestamp, h: int, extra: bool) -> pd.DataFrame:
    """Features of every customer who bought before ``at``, from invoices before ``at``."""
    past = inv[inv["at"] < at]
    days = (at - past["at"]).dt.total_seconds() / 86400
    g = past.assign(days=days).groupby("customer_id")
    f = pd.DataFrame({
        "recency": g["days"].min(), "tenure": g["days"].max(), "frequency": g.size(),
        "monetary": g["value"].sum(), "items": g["items"].sum(), "products": g["products"].sum(),
    })  # fmt: skip
    f["aov"] = f["monetary"] / f["frequency"]
    for w in (30, 90):
        recent = past[days < w].groupby("customer_id")
        f[f"orders_{w}"] = recent.size().reindex(f.index).fillna(0)
        f[f"revenue_{w}"] = recent["value"].sum().reindex(f.index).fillna(0)
    if extra:
        s = past.sort_values("at").assign(days=days)
        gaps = s.groupby("customer_id")["at"].diff().dt.total_seconds() / 86400
        gg = gaps.groupby(s["customer_id"])
        f["gap_mean"] = gg.mean().reindex(f.index)
        f["gap_std"] = gg.std().reindex(f.index)
        f["due"] = f["recency"] / f["gap_mean"].clip(lower=1.0)
        prev = past[(days >= h) & (days < 2 * h)].groupby("customer_id")
        f["orders_prev"] = prev.size().reindex(f.index).fillna(0)
        f["revenue_prev"] = prev["value"].sum().reindex(f.index).fillna(0)
        f["trend"] = np.log1p(f[f"orders_{90}"]) - np.log1p(f["orders_prev"])
        f = f.fillna({"gap_mean": 999.0, "gap_std": 0.0, "due": 0.0})
    return np.log1p(f.clip(lower=0)).assign(trend=f.get("trend", 0.0))


def bought(inv: pd.DataFrame, start: pd.Timestamp, h: int) -> set:
    window = inv[(inv["at"] >= start) & (inv["at"] < start + pd.Timedelta(days=h))]
    return set(window["customer_id"])


def anchors(inv: pd.DataFrame, at: pd.Timestamp, h: int) -> dict[str, pd.Series]:
    fresh = at - pd.Timedelta(days=h)
    out = {}
    for name, extra in (("logistic RFM", False), ("logistic RFM + gaps + trend", True)):
        train, test = rfm(inv, fresh, h, extra), rfm(inv, at, h, extra)
        y = train.index.isin(bought(inv, fresh, h)).astype(int)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train, y)
        out[name] = pd.Series(model.predict_proba(test[train.columns])[:, 1], index=test.index)
    test = rfm(inv, at, h, False)
    out["frequency alone"] = test["frequency"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--as-of", default="2011-06-12")
    ap.add_argument("--horizon", type=int, default=90)
    ap.add_argument("--data", type=Path, default=DATA / FILE)
    ap.add_argument("--keep", type=Path, help="project folder (reused when it has profiles)")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="proxy-"))
    folder.mkdir(parents=True, exist_ok=True)
    at, h = pd.Timestamp(args.as_of), args.horizon
    try:
        profiles = run_procedure(folder, args.data, args.as_of, h).set_index("customer_id")
    except RuntimeError as exc:
        print(exc)
        profiles = pd.DataFrame({"p_purchase": [], "churn_risk": []})
    inv = invoices(args.data)
    judged = sorted(set(inv.loc[inv["at"] < at, "customer_id"]))
    buyers = bought(inv, at, h)
    y = pd.Series([c in buyers for c in judged], index=judged, dtype=int)
    end = inv["at"].max()
    print(f"as of {args.as_of}, {h} days (file ends {end:%Y-%m-%d %H:%M} UTC):"
          f" {len(y):,} customers who had bought, {y.mean():.1%} bought again")  # fmt: skip
    rows = []
    p = profiles["p_purchase"].reindex(judged).astype("float64")
    if p.notna().any():
        known = p.notna()
        rows.append(("sendwise p_purchase", roc_auc_score(y[known], p[known]), p[known].mean(),
                     f"{known.mean():.1%} scored"))  # fmt: skip
    else:
        rows.append(("sendwise p_purchase", float("nan"), float("nan"), "empty"))
    churn = profiles["churn_risk"].reindex(judged).astype("float64")
    if churn.notna().any():
        known = churn.notna()
        rows.append(("sendwise churn_risk (no order)", roc_auc_score(1 - y[known], churn[known]),
                     churn[known].mean(), f"{known.mean():.1%} scored"))  # fmt: skip
    for name, score in anchors(inv, at, h).items():
        s = score.reindex(judged)
        mean = s.mean() if name.startswith("logistic") else float("nan")
        rows.append((f"anchor: {name}", roc_auc_score(y, s.fillna(s.min())), mean, ""))
    print(f"{'score':40s} {'ROC-AUC':>8s} {'mean':>7s}  observed {y.mean():.3f}")
    for name, auc, mean, note in rows:
        print(f"{name:40s} {auc:8.4f} {mean:7.3f}  {note}")


if __name__ == "__main__":
    main()
