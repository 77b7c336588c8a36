"""Killing a real sender: the script of a sending process (one pipeline, or several worker
processes) and the loop that SIGKILLs it at random moments and lets a last run finish."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SENDER = """
import sys
sys.path.insert(0, {tests!r})
from datetime import datetime
from campaign_support import GreetingRenderer
from keys_support import KEY
from sendwise.campaigns.workers import send_in_workers
from sendwise.config import DeliverySettings, SmtpSettings
from sendwise.delivery.pipeline import deliver
from sendwise.store import Store
kind, workers = {kind!r}, {workers}
if kind == "outbox":
    from sendwise.delivery.outbox import OutboxMessenger
    messenger = OutboxMessenger({target!r})
else:
    from sendwise.delivery.smtp import SmtpMessenger
    messenger = SmtpMessenger(SmtpSettings(host="127.0.0.1", port={target!r}, starttls=False,
                                           connections=4))
store = Store({url!r})
opts = DeliverySettings(batch_size={batch}, signing_key=KEY)
args = dict(now=datetime(2024, 6, 1, 11), journal={journal})
if workers == 1:
    deliver(store, {cid!r}, GreetingRenderer(), messenger, opts, **args)
else:
    send_in_workers(workers, store, {cid!r}, GreetingRenderer(), messenger, opts,
                    sender=opts.sender, progress=None, **args)
"""


def sender_script(
    *,
    kind: str,
    target: str | int,
    url: str,
    cid: str,
    batch: int,
    journal: Path | None = None,
    workers: int = 1,
) -> str:
    """Python code that sends campaign ``cid`` of the store at ``url`` to the outbox folder or
    the SMTP port ``target``, from one process or ``workers`` forked ones."""
    book = None if journal is None else f"__import__('pathlib').Path({str(journal)!r})"
    return SENDER.format(
        tests=str(TESTS),
        kind=kind,
        workers=workers,
        target=target,
        url=url,
        cid=cid,
        batch=batch,
        journal=book,
    )


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie nobody reaped is dead too


def kill_and_resume(
    script_for: Callable[[bool], str],
    progress: Callable[[], int],
    *,
    seed: int,
    kills: int,
    log: Path,
    max_wait: float,
) -> int:
    """Run the sender (``script_for(True)`` while it is to be killed, ``script_for(False)``
    for the last run), SIGKILL it at a random moment up to ``max_wait`` s after it starts
    sending, ``kills`` times, checking that any worker processes die with it; then let a last
    run finish. Returns how many runs were killed mid-send."""
    rng = random.Random(seed)
    killed = 0
    while True:
        killing = killed < kills
        with open(log, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", script_for(killing)], stderr=err)
            if killing:
                before = progress()
                while proc.poll() is None and progress() == before:  # wait until it sends
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, max_wait))
                children = _children(proc.pid)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    killed += 1
                    deadline = time.monotonic() + 5
                    while not all(map(_gone, children)) and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert all(map(_gone, children)), "a worker outlived its parent"
                    continue
            proc.wait(timeout=600)
        assert proc.returncode == 0, log.read_text()[-2000:]
        return killed
