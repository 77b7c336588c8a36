"""SIGKILL during intake loses no event that was answered 2xx: the real `sendwise serve`
(uvicorn, two worker processes) in its own process group, client threads posting batches and
recording every acknowledged messageId, the whole group killed with SIGKILL mid-stream, then a
restart: every acknowledged messageId is in the store, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from conftest import PG_URL_ENV
from sendwise.access import Scope, create_key
from sendwise.config import init_project, load_settings
from sendwise.store import open_store
from sendwise.store.records import utcnow
from tracking_support import free_port

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups and SIGKILL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (the project's SQLite file), or a fresh schema of the test PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    raw = os.environ.get(PG_URL_ENV)
    if not raw:
        pytest.skip(f"{PG_URL_ENV} is not set")
    url = "postgresql+psycopg://" + raw.split("://", 1)[1]
    schema = f"sw_crash_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _start(folder: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sendwise.cli", "serve", "--project", str(folder),
           "--port", str(port), "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the service did not answer")


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the uvicorn supervisor and both workers at once
    proc.wait(30)


def _client(
    url: str, key: str, name: str, acked: list[str], lost: list[int], stop: threading.Event
) -> None:
    i = 0
    with httpx.Client(base_url=url, auth=(key, ""), timeout=10) as http:
        while not stop.is_set():
            ids = [f"{name}-{i}-{j}" for j in range(25)]
            calls = [{"type": "track", "userId": f"u{j}", "event": "Product Viewed",
                      "messageId": m, "properties": {"product_id": f"sku{j}"}}
                     for j, m in enumerate(ids)]  # fmt: skip
            i += 1
            try:
                answer = http.post("/v1/batch", json={"batch": calls})
            except httpx.HTTPError:
                lost.append(i)  # killed mid-request: not acknowledged, a client would retry
                time.sleep(0.05)
                continue
            if 200 <= answer.status_code < 300:
                acked.extend(ids)


def _stored(settings) -> list[str]:
    ids: list[str] = []
    with open_store(settings) as store:
        seq = 0
        while rows := store.intake.since(seq, 50_000):
            ids += [r["message_id"] for r in rows]
            seq = int(rows[-1]["seq"])
    return ids


def test_sigkill_loses_no_acknowledged_event(tmp_path: Path, store_url: str | None) -> None:
    folder = tmp_path / "shop"
    init_project(folder)
    env = {"SENDWISE_STORE__URL": store_url} if store_url else {}
    settings = load_settings(folder, **({"store": {"url": store_url}} if store_url else {}))
    with open_store(settings) as store:
        key = create_key(store, "website", Scope.WRITE, at=utcnow())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(folder, port, env)
    acked: list[str] = []
    lost: list[int] = []
    stop = threading.Event()
    clients = [
        threading.Thread(target=_client, args=(url, key, f"c{n}", acked, lost, stop))
        for n in range(4)
    ]
    try:
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acked) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill(proc)  # while the clients are still posting
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
        if proc.poll() is None:
            _kill(proc)
    assert len(acked) >= 3000 and lost  # requests were cut by the kill
    proc = _start(folder, port, env)  # restarts on the same store
    try:
        after = {"userId": "u", "event": "After", "messageId": "after"}
        later = httpx.post(f"{url}/v1/track", auth=(key, ""), json=after)
        assert later.status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    ids = _stored(settings)
    print(f"acknowledged {len(acked)}, stored {len(ids)}, requests cut by the kill {len(lost)}")
    assert len(ids) == len(set(ids))
    missing = set(acked) - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    assert "after" in ids
