"""Sending one campaign from several processes, one shard of its messages each.

Rendering and building a message is Python work that holds one core, so a single process sends
at most what one core renders. :func:`send_in_workers` forks ``n`` processes; each runs the
ordinary crash-safe pipeline (:func:`sendwise.delivery.pipeline.deliver`) over its own
:class:`~sendwise.delivery.shards.Shard`, with its own store connections, a read-only handle on
the warehouse and its own journal. Everything the pipeline guarantees holds per shard, and the
shards are disjoint and cover the campaign, so it holds for the campaign.

Fork, not spawn: a child starts in milliseconds with the parent's compiled templates, where a
fresh interpreter spends seconds importing. The parent closes its DuckDB file while the children
read it (DuckDB admits one writer or many readers) and opens it again afterwards. A child dies
with its parent (``PR_SET_PDEATHSIG`` on Linux, and a check of its parent before each batch), so
a killed send leaves no process behind that a rerun could race with.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sendwise.config import DeliverySettings
from sendwise.content.message import EmailRenderer
from sendwise.delivery.messenger import Messenger
from sendwise.delivery.pipeline import DeliveryReport, deliver, recover
from sendwise.delivery.policy import SendPolicy
from sendwise.delivery.shards import MAX_SHARDS, Shard
from sendwise.errors import DeliveryError, SendwiseError
from sendwise.store.connection import Store
from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)

PARALLEL_FROM = 5_000
"""Due messages from which the default is one process per core (fewer are not worth a fork)."""
MAX_AUTO = 8


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods() and sys.platform.startswith("linux")


def worker_count(configured: int | None, due: int, renderer: EmailRenderer) -> int:
    """How many processes send: ``configured``, or one per core for a large campaign; 1 when
    the renderer's warehouse cannot be opened by another process or fork is not available."""
    n = configured if configured is not None else (os.cpu_count() or 1)
    if configured is None and due < PARALLEL_FROM:
        n = 1
    n = max(1, min(n, MAX_AUTO if configured is None else MAX_SHARDS, due))
    if n == 1:
        return 1
    if not can_fork():
        logger.info("one sending process: this platform cannot fork")
        return 1
    wh = getattr(renderer, "wh", None)
    movable = isinstance(wh, Warehouse) and wh.shareable and hasattr(renderer, "with_warehouse")
    if wh is not None and not movable:
        logger.info("one sending process: the renderer's warehouse cannot be opened by another")
        return 1
    return n


def _share(opts: DeliverySettings, messenger: Messenger, n: int) -> DeliverySettings:
    """The rate limit and the connections are the campaign's, split between the workers."""
    if messenger.concurrency > 1:
        messenger.concurrency = math.ceil(messenger.concurrency / n)
    if opts.rate_per_second is not None:
        opts = opts.model_copy(update={"rate_per_second": opts.rate_per_second / n})
    return opts


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the per-batch check below still applies
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _child(
    shard: Shard,
    parent: int,
    store: Store,
    wh_url: str | None,
    renderer: EmailRenderer,
    messenger: Messenger,
    opts: DeliverySettings,
    kwargs: dict[str, Any],
    done: Any,
    results: Any,
) -> None:
    _die_with_parent(parent)
    # The parent's handlers may hold locks of threads that do not exist here (a progress bar).
    logging.basicConfig(
        level=logging.getLogger().level or logging.WARNING,
        format=f"%(levelname)s worker {shard}: %(message)s",
        force=True,
    )
    store.after_fork()  # new connections; the parent's stay the parent's
    wh = None
    try:
        if wh_url is not None:
            wh = Warehouse(wh_url, threads=1, read_only=True)
            renderer = renderer.with_warehouse(wh)  # type: ignore[attr-defined]

        def progress(n: int) -> None:
            if os.getppid() != parent:
                os._exit(1)
            with done.get_lock():
                done.value += n

        cid = kwargs.pop("campaign_id")
        report = deliver(
            store, cid, renderer, messenger, opts, shard=shard, progress=progress, **kwargs
        )
        results.put((shard.index, "ok", asdict(report)))
    except SendwiseError as exc:
        results.put((shard.index, "error", str(exc)))
    except BaseException as exc:  # reported to the parent, which raises it as a DeliveryError
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        logger.error("worker %s failed:\n%s", shard, traceback.format_exc())
        results.put((shard.index, "error", detail))
    finally:
        if wh is not None:
            wh.close()


def send_in_workers(
    n: int,
    store: Store,
    campaign_id: str,
    renderer: EmailRenderer,
    messenger: Messenger,
    opts: DeliverySettings,
    *,
    sender: str | None,
    now: datetime | None,
    progress: Callable[[int], None] | None,
    journal: Path | None,
    policy: SendPolicy | None = None,
) -> DeliveryReport:
    """Deliver the campaign's due messages from ``n`` forked processes (see the module doc);
    each applies ``policy`` to the batches it claims."""
    started = time.perf_counter()
    if journal is not None:
        recover(store, campaign_id, journal)  # before the shards: a killed run's keys
    concurrency = messenger.concurrency
    opts = _share(opts, messenger, n)
    ctx = mp.get_context("fork")
    done, results = ctx.Value("q", 0), ctx.SimpleQueue()
    kwargs = dict(campaign_id=campaign_id, sender=sender, now=now, journal=journal, policy=policy)
    wh: Warehouse | None = getattr(renderer, "wh", None)
    with wh.released() if wh is not None else contextlib.nullcontext():
        shared = (store, None if wh is None else wh.url, renderer, messenger, opts)
        procs = [
            ctx.Process(
                target=_child,
                args=(Shard(i, n), os.getpid(), *shared, dict(kwargs), done, results),
                name=f"sendwise-send-{i + 1}of{n}",
            )
            for i in range(n)
        ]
        for p in procs:
            p.start()
        seen = 0
        try:
            while any(p.is_alive() for p in procs) or seen < done.value:
                current = done.value
                if current > seen and progress is not None:
                    progress(current - seen)
                seen = current
                time.sleep(0.1)
        finally:
            for p in procs:
                p.join()
            messenger.concurrency = concurrency  # the parent's messenger is as it was given
    return _combine(procs, results, started)


def _combine(procs: list[Any], results: Any, started: float) -> DeliveryReport:
    total = DeliveryReport(workers=len(procs))
    reported: dict[int, tuple[str, Any]] = {}
    while not results.empty():
        index, kind, payload = results.get()
        reported[index] = (kind, payload)
    errors = []
    for i, p in enumerate(procs):
        kind, payload = reported.get(i, ("error", f"exited with code {p.exitcode}"))
        if kind == "error":
            errors.append(f"worker {i + 1}/{len(procs)}: {payload}")
            continue
        total.sent += payload["sent"]
        total.failed += payload["failed"]
        total.retries += payload["retries"]
        total.skipped += payload["skipped"]
        total.deferred += payload["deferred"]
        total.reasons.update(payload["reasons"])
        total.skip_reasons.update(payload["skip_reasons"])
    total.seconds = time.perf_counter() - started
    if errors:
        raise DeliveryError(
            "; ".join(errors) + f" ({total.sent:,} sent meanwhile; run send again to resume)"
        )
    return total
