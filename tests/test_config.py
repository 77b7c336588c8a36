"""Project settings: sendwise.toml, SENDWISE_* variables, and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from sendwise.config import CONFIG_FILE, DEFAULT_TOML, init_project, load_settings
from sendwise.errors import ConfigError, ProjectError, SendwiseError
from sendwise.ingest.load import ingest
from sendwise.warehouse.connection import Warehouse


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SENDWISE_* variable of the calling shell may leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("SENDWISE_"):
            monkeypatch.delenv(name)


def test_init_project_writes_the_default_toml(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "shop"
    written = init_project(folder)
    assert written == folder.resolve() / CONFIG_FILE
    assert written.read_text(encoding="utf-8") == DEFAULT_TOML
    settings = load_settings(folder)
    assert settings.project == folder.resolve()
    assert settings.warehouse.url == "duckdb://warehouse.duckdb"
    assert settings.ingest.timezone == "UTC"
    assert settings.ingest.max_reject_share == 1.0
    assert settings.mappings == {}


def test_init_project_keeps_an_existing_toml(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('[ingest]\ntimezone = "Asia/Tokyo"\n', encoding="utf-8")
    init_project(tmp_path)
    assert (tmp_path / CONFIG_FILE).read_text(
        encoding="utf-8"
    ) == '[ingest]\ntimezone = "Asia/Tokyo"\n'
    assert load_settings(tmp_path).ingest.timezone == "Asia/Tokyo"


def test_init_project_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ProjectError, match="cannot create project folder"):
        init_project(blocker / "shop")


FULL_TOML = """\
[warehouse]
url = "duckdb://data/wh.duckdb"
threads = 2
memory_limit = "1GB"

[ingest]
timezone = "Europe/London"
max_reject_share = 0.25

[mappings.crm]
table = "customer"
columns = { customer_id = "Id", email = "E-mail" }
timestamp_format = "%d/%m/%Y %H:%M"
"""


def test_load_settings_reads_the_toml(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(FULL_TOML, encoding="utf-8")
    s = load_settings(tmp_path)
    assert s.warehouse.url == "duckdb://data/wh.duckdb"
    assert s.warehouse.threads == 2
    assert s.warehouse.memory_limit == "1GB"
    assert s.ingest.timezone == "Europe/London"
    assert s.ingest.max_reject_share == 0.25
    crm = s.mappings["crm"]
    assert crm.table == "customer"
    assert crm.columns == {"customer_id": "Id", "email": "E-mail"}
    assert crm.timezone is None
    assert crm.timestamp_format == "%d/%m/%Y %H:%M"


def test_project_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CONFIG_FILE).write_text('[ingest]\ntimezone = "Asia/Tokyo"\n', encoding="utf-8")
    monkeypatch.setenv("SENDWISE_PROJECT", str(tmp_path))
    s = load_settings()
    assert s.project == tmp_path.resolve()
    assert s.ingest.timezone == "Asia/Tokyo"


def test_environment_overrides_the_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CONFIG_FILE).write_text(FULL_TOML, encoding="utf-8")
    monkeypatch.setenv("SENDWISE_WAREHOUSE__URL", "duckdb:///elsewhere/other.duckdb")
    monkeypatch.setenv("SENDWISE_INGEST__MAX_REJECT_SHARE", "0.5")
    s = load_settings(tmp_path)
    assert s.warehouse.url == "duckdb:///elsewhere/other.duckdb"
    assert s.warehouse_url() == "duckdb:///elsewhere/other.duckdb"
    assert s.ingest.max_reject_share == 0.5
    # The other values of the same sections still come from the file.
    assert s.warehouse.threads == 2
    assert s.ingest.timezone == "Europe/London"


def test_keyword_overrides_beat_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_project(tmp_path)
    monkeypatch.setenv("SENDWISE_INGEST__TIMEZONE", "Asia/Tokyo")
    assert load_settings(tmp_path).ingest.timezone == "Asia/Tokyo"
    assert (
        load_settings(tmp_path, ingest={"timezone": "Europe/Paris"}).ingest.timezone
        == "Europe/Paris"
    )


def test_malformed_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    toml = tmp_path / CONFIG_FILE
    toml.write_text("[warehouse\nurl = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(toml.resolve()) in str(err.value)
    assert "not valid TOML" in str(err.value)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("colour = 'blue'\n", "colour"),
        ("[wharehouse]\nurl = 'duckdb://x.duckdb'\n", "wharehouse"),
        ("[warehouse]\nurll = 'duckdb://x.duckdb'\n", "warehouse.urll"),
        ("[ingest]\ntimezon = 'UTC'\n", "ingest.timezon"),
        ("[mappings.crm]\ntable = 'customer'\ncolums = {}\n", "mappings.crm.colums"),
        ("[mappings.crm]\ncolumns = { customer_id = 'Id' }\n", "mappings.crm.table"),
        ("[ingest]\nmax_reject_share = 'lots'\n", "ingest.max_reject_share"),
    ],
)
def test_unknown_or_bad_key_is_a_config_error(tmp_path: Path, toml: str, field: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    message = str(err.value)
    assert field in message
    assert str((tmp_path / CONFIG_FILE).resolve()) in message


def test_bad_environment_value_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_project(tmp_path)
    monkeypatch.setenv("SENDWISE_WAREHOUSE__THREADS", "many")
    with pytest.raises(ConfigError, match=r"warehouse\.threads"):
        load_settings(tmp_path)


def test_missing_project_folder_is_a_project_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ProjectError) as err:
        load_settings(missing)
    assert str(missing) in str(err.value)
    assert "sendwise init" in str(err.value)
    assert not missing.exists()  # loading settings never creates the folder


def test_relative_duckdb_url_resolves_inside_the_project(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(FULL_TOML, encoding="utf-8")
    s = load_settings(tmp_path)
    assert s.warehouse_url() == "duckdb://" + str(tmp_path.resolve() / "data" / "wh.duckdb")
    assert s.path("x", "y.csv") == tmp_path.resolve() / "x" / "y.csv"
    default = load_settings(tmp_path, warehouse={"url": "duckdb://warehouse.duckdb"})
    assert default.warehouse_url() == "duckdb://" + str(tmp_path.resolve() / "warehouse.duckdb")
    memory = load_settings(tmp_path, warehouse={"url": "duckdb://:memory:"})
    assert memory.warehouse_url() == "duckdb://:memory:"
    absolute = load_settings(tmp_path, warehouse={"url": "duckdb:///srv/wh.duckdb"})
    assert absolute.warehouse_url() == "duckdb:///srv/wh.duckdb"


def test_relative_project_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_project(tmp_path / "shop")
    monkeypatch.chdir(tmp_path)
    s = load_settings("shop")
    assert s.project == (tmp_path / "shop").resolve()
    assert s.warehouse_url() == "duckdb://" + str(
        (tmp_path / "shop" / "warehouse.duckdb").resolve()
    )


def test_the_warehouse_file_lives_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_project(tmp_path / "shop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder must not matter
    s = load_settings(tmp_path / "shop")
    with Warehouse.from_settings(s) as wh:
        assert wh.count("customer") == 0
    assert (tmp_path / "shop" / "warehouse.duckdb").is_file()
    assert list(elsewhere.iterdir()) == []


def test_unknown_ingest_timezone_is_a_config_error(tmp_path: Path) -> None:
    # A bad zone must fail when the settings load, not as an engine error in the first ingest.
    init_project(tmp_path)
    (tmp_path / CONFIG_FILE).write_text('[ingest]\ntimezone = "Not/AZone"\n', encoding="utf-8")
    path = tmp_path / "c.csv"
    path.write_text("customer_id,created_at\nc1,2024-01-01 10:00:00\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="Not/AZone"):
        settings = load_settings(tmp_path)
        with Warehouse.from_settings(settings) as wh:
            ingest(wh, settings, path, table="customer")


def test_negative_max_reject_share_is_a_config_error(tmp_path: Path) -> None:
    # A share belongs in [0, 1]; a negative one would make every load fail.
    (tmp_path / CONFIG_FILE).write_text("[ingest]\nmax_reject_share = -0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_reject_share"):
        load_settings(tmp_path)


def test_config_errors_are_sendwise_errors() -> None:
    assert issubclass(ConfigError, SendwiseError)
    assert issubclass(ProjectError, SendwiseError)
