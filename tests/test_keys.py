"""No public secrets: the signing key `init` writes (never into sendwise.toml), the refusal of a
missing, short or published key by everything that signs or verifies, and rotation with a grace
period. The forged-link acceptance runs through a real uvicorn on a real store."""

from __future__ import annotations

import os
import secrets
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from campaign_support import GreetingRenderer, event_counts, seed_campaign
from sendwise.api import create_app
from sendwise.cli.app import app as cli
from sendwise.config import CONFIG_FILE, DeliverySettings, Settings, init_project, load_settings
from sendwise.delivery.links import sign
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.errors import ConfigError
from sendwise.keys import (
    KEY_ENV,
    MIN_LENGTH,
    PUBLIC_KEYS,
    fingerprint,
    key_ring,
    problem,
    rotate,
    secrets_path,
    signing_key,
)
from sendwise.store import Store
from sendwise.store.records import event_rows, suppressed
from sendwise.store.schema import message
from tracking_support import running

OLD_DEFAULT = "change-me-sendwise-demo-key"
HUMAN = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SENDWISE_") and name != "SENDWISE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


def _key(folder: Path) -> str:
    return load_settings(folder).delivery.signing_key.get_secret_value()


def test_init_writes_a_random_key_outside_the_committed_toml(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    init_project(a)
    init_project(b)
    key = _key(a)
    assert problem(key) is None and len(key) >= MIN_LENGTH and key != _key(b)
    assert (
        key not in (a / CONFIG_FILE).read_text()
        and "signing_key =" not in (a / CONFIG_FILE).read_text()
    )
    path = secrets_path(a)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    assert tomllib.loads(path.read_text())["delivery"]["signing_key"] == key
    init_project(a)  # again: the key is kept
    assert _key(a) == key


def test_the_environment_variable_overrides_the_file(tmp_path, monkeypatch) -> None:
    init_project(tmp_path)
    mine = secrets.token_urlsafe(40)
    monkeypatch.setenv(KEY_ENV, mine)
    assert signing_key(load_settings(tmp_path).delivery) == mine.encode()
    monkeypatch.setenv(KEY_ENV, OLD_DEFAULT)
    with pytest.raises(ConfigError, match="public"):
        signing_key(load_settings(tmp_path).delivery)


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "short-key-123", *sorted(PUBLIC_KEYS), OLD_DEFAULT.upper(),
     "change-me-please-this-is-long-enough-1234567", "a" * 64, "ab" * 40,
     "your-secret-key-goes-here-0123456789abcdef"],
)  # fmt: skip
def test_missing_short_public_or_placeholder_keys_are_refused(value) -> None:
    opts = DeliverySettings(signing_key=None if value is None else SecretStr(value))
    with pytest.raises(ConfigError) as err:
        signing_key(opts)
    message = str(err.value)
    assert "\n" not in message and "sendwise keys rotate" in message and KEY_ENV in message
    if value:
        assert value not in message  # the key is never shown
    with pytest.raises(ConfigError):
        key_ring(opts)


@given(st.integers(min_value=24, max_value=64))
def test_random_keys_are_accepted(nbytes: int) -> None:
    key = secrets.token_urlsafe(nbytes)
    assert problem(key) is None
    assert signing_key(DeliverySettings(signing_key=key)) == key.encode()


def test_default_settings_refuse_to_sign_or_verify(tmp_path: Path) -> None:
    """Acceptance: a project at default settings (no key) neither signs nor verifies."""
    settings = Settings(project=tmp_path)
    assert settings.delivery.signing_key is None
    with pytest.raises(ConfigError, match="not set"):
        create_app(settings)
    with Store(f"sqlite:///{tmp_path / 'store.sqlite'}") as store:
        cid = seed_campaign(store, 10)
        with pytest.raises(ConfigError, match="sendwise keys rotate"):
            deliver(store, cid, GreetingRenderer(), OutboxMessenger(tmp_path / "o"),
                    settings.delivery, now=datetime(2024, 6, 1, 11))  # fmt: skip
        assert not list(tmp_path.rglob("*.eml"))
        assert event_counts(store)["send"] == 0


def test_a_link_forged_with_the_old_default_key_is_refused_and_records_nothing(
    store: Store, tmp_path: Path
) -> None:
    """Acceptance: open, click and one-click unsubscribe links signed with the old published
    default answer 403 and leave no event and no suppression; genuine ones work."""
    seed_campaign(store, 10)
    with store.begin() as conn:
        row = conn.execute(select(message).where(message.c.status == "pending").limit(1)).first()
    init_project(tmp_path / "shop")
    settings = load_settings(tmp_path / "shop")
    before = len(event_rows(store))
    old = OLD_DEFAULT.encode()
    forged = [
        ("get", f"/o/{sign(old, f'open:{row.message_key}')}.gif"),
        ("get", f"/c/{sign(old, f'click:{row.message_key}:https://evil.example/x')}"),
        ("get", f"/unsubscribe/{sign(old, f'unsubscribe:{row.message_key}')}"),
        ("post", f"/unsubscribe/{sign(old, f'unsubscribe:{row.message_key}')}"),
        ("get", f"/preferences/{sign(old, f'preferences:{row.message_key}')}"),
    ]
    with (
        running(create_app(settings, store=store)) as url,
        httpx.Client(base_url=url, headers={"user-agent": HUMAN}) as http,
    ):
        for method, path in forged:
            r = http.request(method, path, content=b"List-Unsubscribe=One-Click",
                             follow_redirects=False)  # fmt: skip
            assert r.status_code == 403, (path, r.status_code)
            assert "evil.example" not in r.headers.get("location", "")
        genuine = sign(signing_key(settings.delivery), f"open:{row.message_key}")
        assert http.get(f"/o/{genuine}.gif").status_code == 200
    rows = event_rows(store)
    assert len(rows) == before + 1 and rows[-1]["type"] == "open"
    assert suppressed(store).empty


def test_the_service_refuses_to_start_on_the_old_default(tmp_path: Path, monkeypatch) -> None:
    init_project(tmp_path)
    monkeypatch.setenv(KEY_ENV, OLD_DEFAULT)
    with pytest.raises(ConfigError, match="public"):
        create_app(load_settings(tmp_path))


def test_rotation_keeps_old_links_valid_for_the_grace_period_only(tmp_path, store) -> None:
    init_project(tmp_path)
    first = _key(tmp_path)
    now = datetime.now(UTC)
    done = rotate(load_settings(tmp_path), now=now)
    settings = load_settings(tmp_path)
    second = settings.delivery.signing_key.get_secret_value()
    assert (
        second != first and done.new == fingerprint(second) and done.retired == fingerprint(first)
    )
    assert done.valid_until == now + timedelta(days=30)
    assert stat.S_IMODE(secrets_path(tmp_path).stat().st_mode) == 0o600
    ring = key_ring(settings.delivery)
    assert ring.current == second.encode()  # the new key signs
    assert list(ring.verifying()) == [second.encode(), first.encode()]
    assert list(ring.verifying(now=(now + timedelta(days=31)).timestamp())) == [second.encode()]
    # through the service: an old link works during the grace period, not after it
    seed_campaign(store, 5)
    with store.begin() as conn:
        key = conn.execute(select(message.c.message_key).limit(1)).scalar_one()
    old_link = f"/o/{sign(first.encode(), f'open:{key}')}.gif"
    with running(create_app(settings, store=store)) as url:
        assert httpx.get(url + old_link, headers={"user-agent": HUMAN}).status_code == 200
    expired = load_settings(
        tmp_path,
        delivery={
            "previous_keys": [{"key": first, "retired_at": now - timedelta(days=30, seconds=1)}]
        },
    )
    with running(create_app(expired, store=store)) as url:
        assert httpx.get(url + old_link, headers={"user-agent": HUMAN}).status_code == 403
    # a second rotation keeps both older keys until they expire; an expired one is dropped
    rotate(load_settings(tmp_path), now=now + timedelta(days=29))
    again = rotate(load_settings(tmp_path), now=now + timedelta(days=31))
    kept = [k.key.get_secret_value() for k in load_settings(tmp_path).delivery.previous_keys]
    assert first not in kept and len(kept) == 2 and again.dropped == 1


def test_rotating_away_from_a_public_key_does_not_keep_it(tmp_path: Path) -> None:
    init_project(tmp_path)
    secrets_path(tmp_path).unlink()
    (tmp_path / CONFIG_FILE).write_text(f'[delivery]\nsigning_key = "{OLD_DEFAULT}"\n')
    done = rotate(load_settings(tmp_path))
    delivery = load_settings(tmp_path).delivery
    assert done.retired is None and delivery.previous_keys == []
    assert problem(delivery.signing_key.get_secret_value()) is None  # the file wins over the toml


def test_rotation_is_refused_while_the_variable_sets_the_key(tmp_path, monkeypatch) -> None:
    init_project(tmp_path)
    monkeypatch.setenv(KEY_ENV, secrets.token_urlsafe(32))
    with pytest.raises(ConfigError, match=KEY_ENV):
        rotate(load_settings(tmp_path))


def test_cli_keys_rotate_and_list_show_fingerprints_never_keys(tmp_path: Path) -> None:
    init_project(tmp_path)
    first = _key(tmp_path)
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "rotate", "--project", str(tmp_path)])
    assert out.exit_code == 0, out.output
    second = _key(tmp_path)
    assert fingerprint(second) in out.output and fingerprint(first) in out.output
    listed = runner.invoke(cli, ["keys", "list", "--project", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "signing" in listed.output and "verifying" in listed.output
    for text in (out.output, listed.output):
        assert first not in text and second not in text


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "1"],
        ["campaign", "send", "Nope"],
        ["render", "newsletter.html", "--preview"],
    ],
)
@pytest.mark.parametrize("how", ["missing", "old default"])
def test_commands_that_sign_or_verify_refuse_without_a_usable_key(
    tmp_path: Path, command: list[str], how: str
) -> None:
    """The real command in its own process: one line saying how to set a key, exit code 1."""
    import subprocess
    import sys

    init_project(tmp_path)
    secrets_path(tmp_path).unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDWISE_")}
    if how == "old default":
        env[KEY_ENV] = OLD_DEFAULT
    r = subprocess.run(
        [sys.executable, "-m", "sendwise.cli", *command, "--project", str(tmp_path)],
        capture_output=True, text=True, env={**env, "COLUMNS": "300"}, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "sendwise keys rotate" in lines[0] and KEY_ENV in lines[0]
    assert OLD_DEFAULT not in r.stderr
