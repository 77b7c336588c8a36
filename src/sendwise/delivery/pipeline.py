"""The send pipeline: batched, rate-limited, concurrent, and safe against a crash at any point.

Every message of a campaign is a row of the store's ``message`` table, written when the campaign
was planned (before anything is sent), keyed by a stable idempotency key. A batch goes:

1. due ``pending`` rows (or ``sending`` ones a crashed run left) are claimed through the store's
   messages repository, which applies the :class:`~sendwise.delivery.policy.SendPolicy` to the
   batch in the same transaction (consent per address, suppression, frequency cap, quiet
   hours, holdout): the skipped are recorded with their reason, the deferred go back to
   ``pending``, the rest are marked ``sending`` (attempts + 1), all **committed** before any is
   handed over; with a frequency cap the count includes every campaign's claimed messages and
   capped claims are serialized, so two campaigns at once cannot both pass it;
2. several processes may send one campaign at once: each holds a sending run (the store
   hands a `sending` row back only when its sender is dead) and claims with SKIP LOCKED;
3. they are rendered and handed to the messenger concurrently (a semaphore of the messenger's
   concurrency, a token-bucket rate limit); transient errors are retried with exponential
   backoff (or the server's Retry-After), permanent ones are not. Just before each part of
   ``RECHECK_EVERY`` messages is handed over, the suppressions and consents of its addresses
   are read again (``messages.recheck``): an unsubscribe, complaint, bounce or withdrawal that
   landed after the claim withholds the message (recorded ``skipped`` with the reason);
4. each outcome is written in one transaction: the row becomes ``sent`` or ``failed`` with the
   reason, and an ``email_event`` (``send`` or ``failed``) is added with a deterministic id.

A crash between 2 and 4 leaves rows in ``sending``; the rerun hands exactly those over again
(so nothing is skipped) and never touches a ``sent`` row (so nothing sent is sent again). With an
idempotent messenger (the outbox) the repeat is absorbed; for SMTP and ESPs the acceptance
journal (journal.py) keeps what the server accepted until the batch is recorded.

Several processes can send one campaign together when each is given its own :class:`Shard`
(see :mod:`sendwise.campaigns.workers`): a process only claims and resumes its shard's rows.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sendwise.config import DeliverySettings
from sendwise.content.message import EmailRenderer, RenderedEmail
from sendwise.delivery.journal import Journal
from sendwise.delivery.links import message_links
from sendwise.delivery.messenger import Messenger, Outcome, RateLimiter
from sendwise.delivery.mime import OutgoingMessage, compose
from sendwise.delivery.policy import SendPolicy
from sendwise.delivery.shards import Shard
from sendwise.errors import SendwiseError
from sendwise.keys import signing_key
from sendwise.store.claims import Claimed, utcnow
from sendwise.store.repositories import Repositories

logger = logging.getLogger(__name__)

RECHECK_EVERY = 50
"""Messages handed over per policy recheck (one read of the suppressions and consents of their
addresses; docs/adr/0085)."""


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    """Kept back by the send policy when claimed (see ``skip_reasons``)."""
    deferred: int = 0
    """Put back to ``pending`` until the end of quiet hours."""
    retries: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    workers: int = 1
    """Processes that sent (see sendwise.campaigns.workers)."""

    @property
    def per_second(self) -> float:
        return (self.sent + self.failed) / self.seconds if self.seconds else 0.0


def journal_files(path: Path) -> list[Path]:
    """The journal of a campaign and those of its shards (``<campaign>.w<i>.keys``)."""
    return [path, *sorted(path.parent.glob(f"{path.stem}.w*{path.suffix}"))]


def shard_journal(path: Path, shard: Shard) -> Path:
    return path.with_name(f"{path.stem}.w{shard.index}{path.suffix}")


def recover(store: Repositories, campaign_id: str, path: Path) -> None:
    """Record the keys every journal of the campaign (its shards' too) holds; before a run
    whose shards may differ from the killed run's."""
    for file in journal_files(path):
        book = Journal(file)
        try:
            _recover(store, campaign_id, book)
        finally:
            book.close()


def _recover(store: Repositories, campaign_id: str, journal: Journal) -> None:
    """Record as sent the messages a killed run saw accepted but did not record."""
    keys = journal.replay()
    if not keys:
        return
    rows = store.messages.sending(campaign_id, keys)
    if rows:
        store.messages.record_outcomes(campaign_id, [(r, "sent", "") for r in rows], utcnow())
        logger.info("campaign %s: %d accepted messages recovered", campaign_id, len(rows))
    journal.clear()


def _render(
    renderer: EmailRenderer, rows: Sequence[Claimed], links: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, RenderedEmail], dict[str, str]]:
    """Rendered emails by customer id, and render errors by customer id."""
    by_template: dict[str, list[str]] = {}
    for row in rows:
        by_template.setdefault(row.template or "", []).append(row.customer_id)
    done: dict[str, RenderedEmail] = {}
    errors: dict[str, str] = {}
    for template, ids in by_template.items():
        try:
            done.update(renderer.render_many(template, ids, links={i: links[i] for i in ids}))
        except Exception:  # isolate the customer that fails; the others still go
            for cid in ids:
                try:
                    done[cid] = renderer.render(template, cid, links=links[cid])
                except Exception as exc:
                    errors[cid] = f"render: {exc.__class__.__name__}: {exc}"
    return done, errors


async def _send_with_retry(
    messenger: Messenger, limiter: RateLimiter, msg: OutgoingMessage, opts: DeliverySettings
) -> tuple[Outcome, int]:
    attempt = 1
    while True:
        await limiter.acquire()
        outcome = await messenger.send(msg)
        if outcome.status != "transient" or attempt >= opts.max_attempts:
            return outcome, attempt
        delay = outcome.retry_after
        if delay is None:
            delay = opts.backoff_seconds * 2 ** (attempt - 1) * (0.5 + random.random())
        await asyncio.sleep(delay)
        attempt += 1


async def _hand_over(
    rows: Sequence[Claimed],
    outgoing: Sequence[OutgoingMessage],
    one: Callable[[OutgoingMessage], Awaitable[tuple[Outcome, int]]],
    recheck: Callable[[Sequence[Claimed]], set[str]],
    concurrency: int,
) -> dict[str, tuple[Outcome, int]]:
    """Hand the messages over ``RECHECK_EVERY`` at a time, each part's policy looked up again
    just before (``recheck`` returns the keys withheld), so a change that lands after the claim
    holds for every message not yet handed over. The next part is rechecked only when the
    messenger can take it (a queue as deep as its concurrency), so its messages go out within
    moments of their recheck, and the connections never wait on a part boundary. Returns the
    outcome of each message handed over, by key."""
    outcomes: dict[str, tuple[Outcome, int]] = {}
    parts = [
        (rows[i : i + RECHECK_EVERY], outgoing[i : i + RECHECK_EVERY])
        for i in range(0, len(rows), RECHECK_EVERY)
    ]
    if concurrency == 1:  # no task per message when nothing overlaps
        for claimed, msgs in parts:
            withheld = recheck(claimed)
            for msg in msgs:
                if msg.key not in withheld:
                    outcomes[msg.key] = await one(msg)
        return outcomes
    queue: asyncio.Queue[OutgoingMessage | None] = asyncio.Queue(maxsize=concurrency)
    failure: list[BaseException] = []

    async def worker() -> None:
        while (msg := await queue.get()) is not None:
            if failure:
                continue  # drain: the run stops once the queue is empty
            try:
                outcomes[msg.key] = await one(msg)
            except Exception as exc:  # e.g. a SendwiseError: stop, as gather would
                failure.append(exc)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(rows)))]
    try:
        for claimed, msgs in parts:
            if failure:
                break
            withheld = recheck(claimed)
            for msg in msgs:
                if msg.key not in withheld:
                    await queue.put(msg)
    finally:
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    if failure:
        raise failure[0]
    return outcomes


async def _deliver(
    store: Repositories,
    campaign_id: str,
    renderer: EmailRenderer,
    messenger: Messenger,
    opts: DeliverySettings,
    *,
    sender: str,
    now: datetime,
    progress: Callable[[int], None],
    journal: Journal,
    clock: Callable[[], datetime] = utcnow,
    shard: Shard | None = None,
    policy: SendPolicy,
) -> DeliveryReport:
    report = DeliveryReport()
    _recover(store, campaign_id, journal)
    if not messenger.idempotent:
        journal.open()
    limiter = RateLimiter(opts.rate_per_second)
    gate = asyncio.Semaphore(messenger.concurrency)
    key = signing_key(opts)  # ConfigError when missing, short or public

    async def one(msg: OutgoingMessage) -> tuple[Outcome, int]:
        async with gate:
            outcome, attempts = await _send_with_retry(messenger, limiter, msg, opts)
        if outcome.status == "sent":
            journal.accepted(msg.key)
        return outcome, attempts

    # a sending run, entered after the journal's recovery (which needs the killed run's rows
    # still `sending`): other processes may send the campaign at once (docs/adr/0170)
    async with messenger:
        with store.messages.sending_run(campaign_id):
            while True:
                claim = store.messages.claim_due(
                    policy,
                    campaign_id=campaign_id,
                    now=now,
                    limit=opts.batch_size,
                    shard=shard,
                    at=clock(),
                )
                if not claim.claimed:
                    break
                report.skipped += len(claim.skipped)
                report.deferred += len(claim.deferred)
                report.skip_reasons.update(why.split(":")[0] for _, why in claim.skipped)
                rows = claim.ready
                if not rows:
                    progress(claim.claimed)
                    continue
                links = {
                    r.customer_id: message_links(opts.base_url, key, r.message_key) for r in rows
                }
                rendered, errors = _render(renderer, rows, links)
                results: dict[str, tuple[str, str]] = {
                    r.message_key: ("failed", errors[r.customer_id])
                    for r in rows
                    if r.customer_id in errors
                }
                todo = [r for r in rows if r.customer_id in rendered and r.email]
                for r in rows:
                    if r.customer_id in rendered and not r.email:
                        results[r.message_key] = ("failed", "no email address")
                tracking = (opts.base_url, key) if opts.track else None
                outgoing = [
                    compose(
                        rendered[r.customer_id],
                        key=r.message_key,
                        to=r.email or "",
                        sender=sender,
                        links=links[r.customer_id],
                        tracking=tracking,
                        campaign_id=campaign_id,
                        variant=r.variant,
                        customer_id=r.customer_id,
                    )
                    for r in todo
                ]

                def recheck(part: Sequence[Claimed]) -> set[str]:
                    withheld = store.messages.recheck(
                        policy, campaign_id=campaign_id, batch=part, now=now, at=clock()
                    )
                    report.skipped += len(withheld)
                    report.skip_reasons.update(why.split(":")[0] for _, why in withheld)
                    return {m.message_key for m, _ in withheld}

                outcomes = await _hand_over(todo, outgoing, one, recheck, messenger.concurrency)
                todo = [r for r in todo if r.message_key in outcomes]
                outcomes_in_order = [outcomes[r.message_key] for r in todo]
                for r, (outcome, attempts) in zip(todo, outcomes_in_order, strict=True):
                    report.retries += attempts - 1
                    if outcome.status == "sent":
                        results[r.message_key] = ("sent", "")
                    else:
                        results[r.message_key] = ("failed", f"{outcome.status}: {outcome.detail}")
                done = [r for r in rows if r.message_key in results]  # not the withheld
                store.messages.record_outcomes(
                    campaign_id, [(r, *results[r.message_key]) for r in done], clock()
                )
                journal.clear()
                for status, reason in results.values():
                    if status == "sent":
                        report.sent += 1
                    else:
                        report.failed += 1
                        report.reasons[reason.split(":")[0]] += 1
                progress(claim.claimed)
    return report


def deliver(
    store: Repositories,
    campaign_id: str,
    renderer: EmailRenderer,
    messenger: Messenger,
    opts: DeliverySettings,
    *,
    sender: str | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    journal: Path | None = None,
    shard: Shard | None = None,
    policy: SendPolicy | None = None,
    freeze_gc: bool = True,
) -> DeliveryReport:
    """Send every due message of ``campaign_id`` (``pending`` or left ``sending`` by a crash)
    and record each outcome. Safe to run again at any time: sent messages are never resent.
    ``journal``: a local file for the keys accepted but not yet recorded (see
    :mod:`sendwise.delivery.journal`); without it, a kill can repeat up to one batch.
    ``now``, when given, is also the time the outcomes are recorded at (a simulated shop's
    clock); otherwise they are recorded at the wall-clock time. ``shard``: send only that
    shard's messages (one of several processes sending the campaign together); its journal is
    ``<journal>.w<i>``, and the caller recovers every journal of the campaign before the shards
    start. ``policy``: decides, for each claimed batch, who may be sent a message now
    (``SendPolicy()`` by default: never a suppressed address nor one that withdrew consent).
    ``freeze_gc=False``: leave the garbage collector alone (a journey worker inside the
    service, whose start-up freeze must hold)."""
    if journal is not None:
        if shard is None:
            recover(store, campaign_id, journal)  # a parallel run's workers may have left keys
        else:
            journal = shard_journal(journal, shard)
    book = Journal(journal)
    started = time.perf_counter()
    # The store, pandas and SQLAlchemy leave a large heap; without freezing it, the cyclic GC
    # rescans it all every few batches and costs a third of the send time.
    if freeze_gc:
        gc.freeze()
    try:
        report = asyncio.run(
            _deliver(
                store,
                campaign_id,
                renderer,
                messenger,
                opts,
                sender=sender or opts.sender,
                now=now or utcnow(),
                progress=progress or (lambda _n: None),
                journal=book,
                clock=utcnow if now is None else (lambda: now),
                shard=shard,
                policy=policy or SendPolicy(),
            )
        )
    except SendwiseError:
        logger.error("delivery of campaign %s stopped; run it again to resume", campaign_id)
        raise
    finally:
        if freeze_gc:
            gc.unfreeze()
        book.close()
    report.seconds = time.perf_counter() - started
    logger.info(
        "campaign %s: %d sent, %d failed, %d skipped",
        campaign_id,
        report.sent,
        report.failed,
        report.skipped,
    )
    return report
