"""Objection to profiling and retention, as `sendwise build` applies them; the tombstone list
against imports for any identifier (hypothesis); the CLI's one-line errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sendwise.cli.app import app
from sendwise.errors import ConfigError
from sendwise.ingest.load import ingest
from sendwise.privacy.build_steps import apply_retention, leave_out, objectors_of, retention
from sendwise.privacy.hashing import identifier_hash
from sendwise.privacy.ledger import object_to_profiling
from sendwise.privacy.tombstones import tombstone_key
from sendwise.store import open_store

NOW = datetime(2026, 1, 1)


def test_objectors_lose_predictions_and_recommendations_only(project) -> None:
    settings, wh = project
    with open_store(settings) as store:
        object_to_profiling(store, "c1", at=NOW)
        object_to_profiling(store, "c2", at=NOW)
        object_to_profiling(store, "c2", objects=False, at=NOW + timedelta(days=1))
        store.consents.record("c1", "granted", email="c1@x.org", source="signup", at=NOW)
        ids = objectors_of(settings)
        assert ids == ["c1"]
        wh.write_table(
            "prediction", pa.table({"customer_id": ["c1", "c2", "c3"], "p": [0.1, 0.2, 0.3]})
        )
        wh.write_table(
            "recommendation",
            pa.table({"customer_id": ["c1", "c1", "c3"], "product_id": ["a", "b", "a"]}),
        )
        assert leave_out(wh, ids) == 3
        assert sorted(wh.table("prediction").customer_id.to_pyarrow().to_pylist()) == ["c2", "c3"]
        assert wh.table("recommendation").customer_id.to_pyarrow().to_pylist() == ["c3"]
        # the marketing consent is a separate purpose: still granted
        changes = store.consents.changes("email", "marketing")
        assert changes.loc[changes.customer_id == "c1", "status"].tolist() == ["granted"]


def test_retention_removes_only_what_is_older_than_the_rule(make_project, tmp_path: Path) -> None:
    settings, wh = make_project(privacy={"retention_days": {"event": 30}})
    rows = "\n".join(
        f"m{i},track,c{i % 3},,Product Viewed,{(NOW - timedelta(days=i)).isoformat()}Z"
        for i in range(60)
    )
    src = tmp_path / "event.csv"
    src.write_text("message_id,type,customer_id,anonymous_id,event,occurred_at\n" + rows + "\n")
    assert ingest(wh, settings, src, table="event").loaded == 60
    (rule,) = retention(wh, settings, NOW)
    assert (rule.table, rule.days, rule.due) == ("event", 30, 29)
    assert apply_retention(wh, settings, NOW) == {"event": 29}
    assert wh.count("event") == 31 and retention(wh, settings, NOW)[0].due == 0


def test_a_retention_rule_on_a_table_without_time_is_a_config_error(make_project) -> None:
    settings, wh = make_project(privacy={"retention_days": {"product_category": 3}})
    with pytest.raises(ConfigError, match="product_category"):
        retention(wh, settings, NOW)


ids = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
).filter(lambda s: s.strip() == s and "," not in s and '"' not in s)


@hsettings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(victim=ids, others=st.lists(ids, min_size=1, max_size=5, unique=True))
def test_an_import_never_brings_back_an_erased_id(
    make_project, tmp_path: Path, victim: str, others: list[str]
) -> None:
    """Whatever the id (unicode, spaces inside, SQL quotes), a tombstoned customer's rows of a
    re-imported file are refused (rule ``erased``, raw text not kept) and the others load."""
    others = [o for o in others if o != victim]
    name = f"p{abs(hash((victim, tuple(others))))}"
    settings, wh = make_project(name=name)
    key = tombstone_key(settings, create=True)
    assert key is not None
    with open_store(settings) as store:
        store.privacy.add_tombstones(
            [(identifier_hash(key, "customer_id", victim), "customer_id")], NOW
        )
    src = tmp_path / f"{name}.parquet"
    import pyarrow.parquet as pq

    everyone = [victim, *others]
    pq.write_table(
        pa.table(
            {"customer_id": everyone, "email": [f"u{i}@example.com" for i in range(len(everyone))]}
        ),
        src,
    )
    report = ingest(wh, settings, src, table="customer")
    assert report.rejects_by_rule == {"erased": 1} and report.loaded == len(others)
    kept = set(wh.table("customer").customer_id.to_pyarrow().to_pylist())
    assert kept == set(others)
    raw = wh.table("reject").raw.to_pyarrow().to_pylist()
    assert raw == [""]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["init", str(tmp_path / "p")])
    out = runner.invoke(
        app,
        [
            "privacy",
            "export",
            "nobody",
            "--out",
            str(tmp_path / "x.json"),
            "--project",
            str(tmp_path / "p"),
        ],
    )
    assert out.exit_code == 1 and "no customer 'nobody'" in out.output
    assert "Traceback" not in out.output
    out = runner.invoke(app, ["privacy", "erase", " ", "--project", str(tmp_path / "p")])
    assert out.exit_code == 1 and "name at least one customer" in out.output


def test_status_reports_the_retention_rules(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "p"
    runner.invoke(app, ["init", str(folder)])
    toml = (folder / "sendwise.toml").read_text()
    (folder / "sendwise.toml").write_text(toml + "\n[privacy]\nretention_days = { event = 730 }\n")
    out = runner.invoke(app, ["status", "--project", str(folder)])
    assert out.exit_code == 0, out.output
    assert "retention: event kept 730 days (by occurred_at)" in " ".join(out.output.split())
