"""Issue 13, defects 10 and 11: a shop with customers but no orders builds profiles; a folder
without sendwise.toml is refused by every command (nothing is created in it); features do not
depend on the machine's time zone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sendwise.config import load_settings
from sendwise.errors import ProjectError
from sendwise.ingest.load import ingest
from sendwise.profiles.build import build_profiles


def test_customers_without_orders_build_profiles(project, sql) -> None:
    settings, wh = project
    path = settings.path("c.csv")
    path.write_text(
        "customer_id,email,created_at\nc1,a@x.com,2024-01-01\nc2,b@x.com,2024-02-01\n",
        encoding="utf-8",
    )
    ingest(wh, settings, path, table="customer")
    built = build_profiles(wh, settings)  # clusters on: too few customers is not an error
    assert built.customers == 2
    assert built.clusters == []
    stale = next(c for c in built.checks if c.name == "stale_data")
    assert stale.message == "there are no orders before the build date"
    rows = sql(wh, "SELECT customer_id, frequency, rfm_segment FROM profile ORDER BY 1")
    assert [(c, f) for c, f, _ in rows] == [("c1", 0), ("c2", 0)]


def test_settings_of_a_folder_without_sendwise_toml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"not a sendwise project: .* run `sendwise init`"):
        load_settings(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SENDWISE_PROJECT", None)
    return subprocess.run(
        [sys.executable, "-m", "sendwise.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["ingest", "c.csv", "--table", "customer"],
        ["segment"],
        ["simulate", "--customers", "10", "--days", "5"],
    ],
)
def test_commands_in_a_folder_without_sendwise_toml_fail_in_one_line(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "c.csv").write_text("customer_id\nc1\n", encoding="utf-8")
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 1
    assert "not a sendwise project" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]  # nothing was created


TZ_SCRIPT = """
import json, sys
from datetime import datetime, timedelta, timezone
from sendwise.config import load_settings
from sendwise.features import customer_features
from sendwise.features.common import as_timestamp
from sendwise.ingest.load import ingest
from sendwise.warehouse.connection import Warehouse

s = load_settings(sys.argv[1], warehouse={"url": "duckdb://:memory:"})
with Warehouse.from_settings(s) as wh:
    for name in ("customer", "order"):
        ingest(wh, s, s.path(name + ".csv"), table=name)
    as_of = datetime(2024, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    rows = customer_features(wh, as_of).order_by("customer_id").to_pyarrow().to_pylist()
    out = {"as_of": str(as_timestamp(as_of)), "rows": rows}
print(json.dumps(out, default=str, sort_keys=True))
"""


def test_features_are_the_same_in_every_machine_time_zone(project) -> None:
    settings, _ = project
    settings.path("customer.csv").write_text("customer_id\nc1\nc2\n", encoding="utf-8")
    settings.path("order.csv").write_text(
        "order_id,customer_id,ordered_at\n"
        "o1,c1,2024-03-02 16:30:00\n"  # before as_of (17:00 UTC)
        "o2,c1,2024-03-02 17:30:00\n"  # after it
        "o3,c2,2024-03-01 23:00:00\n",
        encoding="utf-8",
    )
    results = []
    for zone in ("UTC", "Pacific/Auckland", "America/Los_Angeles"):
        env = {**os.environ, "TZ": zone}
        r = subprocess.run(
            [sys.executable, "-c", TZ_SCRIPT, str(settings.project)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert results[0]["as_of"] == "2024-03-02 17:00:00"
    assert results[0] == results[1] == results[2]
    freq = {row["customer_id"]: row["frequency"] for row in results[0]["rows"]}
    assert freq == {"c1": 1, "c2": 1}
