"""API keys: made once and shown once, stored hashed, checked for scope and rate on every
request (HTTP Basic as Segment's clients send it, or Bearer), revoked by name. Through a real
uvicorn on loopback over a real store, and the CLI in a subprocess-free CliRunner."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sendwise.access import KeyVerifier, RateLimiter, Scope, create_key, list_keys, revoke_key
from sendwise.api import create_app
from sendwise.cli.app import app as cli
from sendwise.config import Settings, init_project
from sendwise.errors import InputError
from sendwise.store import MemoryStore, Store
from tracking_support import running

NOW = datetime(2026, 12, 6, 12)
SIGNING = secrets.token_urlsafe(32)


def basic(key: str) -> dict[str, str]:
    """What segment-analytics-python sends: the write key as user name, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---- the library, on the in-memory fake ---------------------------------------------------


def test_a_key_is_stored_only_as_a_hash_and_verifies() -> None:
    repos = MemoryStore()
    key = create_key(repos, "web", "write", at=NOW)
    assert key.startswith("sw_write_")
    secret = key.split("_", 3)[3]
    (record,) = repos.api_keys.all()
    assert record.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(record)
    info = KeyVerifier(repos).verify(key)
    assert info is not None and info.name == "web" and info.scope is Scope.WRITE
    # one changed character, another scope in the prefix, or garbage: refused
    assert KeyVerifier(repos).verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert KeyVerifier(repos).verify(key.replace("sw_write_", "sw_admin_")) is None
    assert KeyVerifier(repos).verify("") is None
    assert KeyVerifier(repos).verify("sw_write_") is None


def test_keys_are_random_and_names_unique() -> None:
    repos = MemoryStore()
    a = create_key(repos, "a", Scope.READ, at=NOW)
    b = create_key(repos, "b", Scope.READ, at=NOW)
    assert a != b and a.split("_")[2] != b.split("_")[2]
    with pytest.raises(InputError, match="named 'a' already"):
        create_key(repos, "a", "read", at=NOW)
    with pytest.raises(InputError, match="scope must be one of"):
        create_key(repos, "c", "root", at=NOW)
    with pytest.raises(InputError, match="key name"):
        create_key(repos, "[bold]x", "read", at=NOW)
    for rate in (0.0, -1.0, float("nan"), float("inf"), 1e300):
        with pytest.raises(InputError, match="finite number"):
            create_key(repos, "r", "read", rate_per_second=rate, at=NOW)
    assert [k.name for k in list_keys(repos)] == ["a", "b"]


def test_a_revoked_key_stops_working_once_the_cache_expires() -> None:
    repos = MemoryStore()
    key = create_key(repos, "web", "write", at=NOW)
    clock = [0.0]
    verifier = KeyVerifier(repos, cache_seconds=2.0, clock=lambda: clock[0])
    assert verifier.verify(key) is not None
    assert revoke_key(repos, "web", NOW)
    assert not revoke_key(repos, "web", NOW)
    clock[0] = 1.0
    assert verifier.verify(key) is not None  # still cached
    clock[0] = 2.5
    assert verifier.verify(key) is None


def test_the_rate_limiter_allows_the_rate_and_the_burst_then_says_how_long_to_wait() -> None:
    clock = [0.0]
    limiter = RateLimiter(10.0, burst_seconds=2.0, clock=lambda: clock[0])
    assert all(limiter.take("k") == 0.0 for _ in range(20))
    assert limiter.take("k") == pytest.approx(0.1)
    assert limiter.take("other") == 0.0  # per key
    clock[0] = 0.5  # five tokens back
    assert all(limiter.take("k") == 0.0 for _ in range(5))
    assert limiter.take("k") > 0
    assert limiter.take("slow", rate=1.0) == 0.0  # a key's own rate
    assert limiter.take("slow", rate=1.0) == 0.0
    assert limiter.take("slow", rate=1.0) == pytest.approx(1.0)


# ---- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    settings = Settings(delivery={"signing_key": SIGNING}, api={"key_cache_seconds": 0})
    with running(create_app(settings, store=store)) as url:
        yield url, store
    store.close()


def test_scopes_over_http_basic_and_bearer(service: tuple[str, Store]) -> None:
    url, store = service
    write = create_key(store, "web", "write", at=NOW)
    read = create_key(store, "crm", "read", at=NOW)
    admin = create_key(store, "ops", "admin", at=NOW)
    with httpx.Client(base_url=url) as http:
        for key, scope in ((write, "write"), (read, "read"), (admin, "admin")):
            for headers in (basic(key), bearer(key)):
                answer = http.get("/v1/key", headers=headers)
                assert answer.status_code == 200, answer.text
                assert answer.json()["scope"] == scope
        missing = http.get("/v1/key")
        assert missing.status_code == 401
        assert missing.json() == {"error": missing.json()["error"]}
        assert "Basic" in missing.headers["www-authenticate"]
        wrong = write[:-4] + "AAAA" if not write.endswith("AAAA") else write[:-4] + "BBBB"
        assert http.get("/v1/key", headers=basic(wrong)).status_code == 401
        assert write not in http.get("/v1/key", headers=basic(wrong)).text
        revoke_key(store, "web", NOW)
        assert http.get("/v1/key", headers=basic(write)).status_code == 401
        assert http.get("/v1/key", headers=bearer(read)).status_code == 200


def test_a_key_over_its_rate_gets_429_with_retry_after(service: tuple[str, Store]) -> None:
    url, store = service
    key = create_key(store, "slow", "read", rate_per_second=1.0, at=NOW)
    with httpx.Client(base_url=url) as http:
        codes = [http.get("/v1/key", headers=bearer(key)).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:]
        limited = http.get("/v1/key", headers=bearer(key))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "error" in limited.json()


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('auth') / 'store.sqlite'}")
    settings = Settings(delivery={"signing_key": SIGNING})
    with running(create_app(settings, store=store)) as url:
        yield url
    store.close()


@settings(max_examples=80, deadline=None)
@given(
    header=st.text(max_size=80)
    | st.binary(max_size=60).map(lambda b: "Basic " + base64.b64encode(b).decode())
    | st.text(max_size=60).map(lambda t: "Bearer sw_read_" + t)
)
def test_no_authorization_header_makes_a_500(live_url: str, header: str) -> None:
    """Property: whatever the Authorization header holds, the answer is a JSON 401 (or the
    HTTP parser's 400 for a header that breaks HTTP itself), never a 500."""
    try:
        answer = httpx.get(live_url + "/v1/key", headers={"Authorization": header})
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # not a header a client can send at all
    if answer.status_code == 400:
        assert answer.text == "Invalid HTTP request received."  # uvicorn, before the app
        return
    assert answer.status_code == 401
    assert "error" in answer.json()


# ---- the CLI -------------------------------------------------------------------------------


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    init_project(project)
    runner = CliRunner()
    made = runner.invoke(
        cli, ["keys", "create", "--name", "web", "--scope", "write", "-p", str(project)]
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("sw_write_")
    listed = runner.invoke(cli, ["keys", "list", "-p", str(project)])
    assert listed.exit_code == 0 and "web" in listed.stdout and key not in listed.stdout
    again = runner.invoke(
        cli, ["keys", "create", "--name", "web", "--scope", "read", "-p", str(project)]
    )
    assert again.exit_code == 1 and "already" in again.output and "Traceback" not in again.output
    bad = runner.invoke(
        cli, ["keys", "create", "--name", "x", "--scope", "root", "-p", str(project)]
    )
    assert bad.exit_code == 1 and "scope must be one of" in bad.output
    assert runner.invoke(cli, ["keys", "revoke", "web", "-p", str(project)]).exit_code == 0
    gone = runner.invoke(cli, ["keys", "revoke", "web", "-p", str(project)])
    assert gone.exit_code == 1 and "no live API key 'web'" in gone.output
    with Store(f"sqlite:///{project / 'store.sqlite'}") as store:
        assert KeyVerifier(store).verify(key) is None
