"""``sendwise webhooks ...``: outgoing webhooks (a thin shell over sendwise.serving.hooks).

A subscription's secret is printed once, by ``add``; URLs, descriptions and receivers' error
texts are untrusted and printed literally (SafeConsole, markup off).
"""

from __future__ import annotations

from typing import Annotated

import typer

from sendwise.cli.output import SafeConsole, line, one_line
from sendwise.cli.registry import Project, command, group
from sendwise.errors import InputError

webhooks_app = group(
    "webhooks", "Outgoing webhooks: subscribe URLs to events, deliver, replay dead letters."
)
console = SafeConsole()
ProjectOpt = Project


def _when(value: object) -> str:
    return "-" if value is None else str(value)[:19]


@command(webhooks_app, "add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST the webhooks (http or https).")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            "-e",
            help="Event types, repeated or comma-separated: segment.entered, segment.left, "
            "score.crossed, customer.unsubscribed, message.sent, journey.step, or * for all.",
        ),
    ] = None,
    description: Annotated[str, typer.Option(help="A note for the list.")] = "",
    project: ProjectOpt = None,
) -> None:
    """Subscribe URL to event types; prints the signing secret once."""
    from sendwise.config import load_settings
    from sendwise.serving.hooks import add_subscription
    from sendwise.store import open_store

    wanted = [e for item in events or [] for e in item.split(",")]
    if not wanted:
        raise InputError("name the event types with --events (or --events '*' for all)")
    with open_store(load_settings(project)) as store:
        sub = add_subscription(store, url, wanted, description=description)
    console.print(f"subscription {sub.subscription_id}: {sub.url}", markup=False)
    console.print(f"events: {', '.join(sub.events)}", markup=False)
    console.print(f"signing secret (shown once, keep it secret): {sub.secret}", markup=False)


@command(webhooks_app, "list")
def list_subscriptions(project: ProjectOpt = None) -> None:
    """Subscriptions, and the outbox by status (secrets are never shown again)."""
    from sendwise.config import load_settings
    from sendwise.serving.hooks import list_subscriptions as run_list
    from sendwise.store import open_store

    with open_store(load_settings(project)) as store:
        subs = run_list(store)
        counts = store.webhooks.counts()
    for s in subs:
        state = "active" if s.active else f"disabled ({s.disabled_reason or ''})"
        note = f"  {s.description}" if s.description else ""
        console.print(
            line(
                (s.subscription_id, "bold"),
                f"  {one_line(s.url)}  {', '.join(s.events)}",
                f"  {state}  since {_when(s.created_at)}{one_line(note)}",
            ),
            soft_wrap=True,
        )
    summary = ", ".join(f"{counts.get(k, 0):,} {k}" for k in ("pending", "delivered", "dead"))
    console.print(f"{len(subs)} subscription(s); outbox: {summary}", markup=False)


@command(webhooks_app, "remove")
def remove(
    subscription_id: Annotated[str, typer.Argument(help="The subscription's id (wh_...).")],
    project: ProjectOpt = None,
) -> None:
    """Delete a subscription and every webhook still waiting for it."""
    from sendwise.config import load_settings
    from sendwise.serving.hooks import remove_subscription
    from sendwise.store import open_store

    with open_store(load_settings(project)) as store:
        remove_subscription(store, subscription_id)
    console.print(f"subscription {subscription_id} removed", markup=False)


@command(webhooks_app, "dead")
def dead(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    project: ProjectOpt = None,
) -> None:
    """Webhooks whose last attempt failed (replay them with `sendwise webhooks replay`)."""
    from sendwise.config import load_settings
    from sendwise.serving.hooks import dead_letters
    from sendwise.store import open_store

    with open_store(load_settings(project)) as store:
        rows = dead_letters(store, limit=limit)
    for e in rows:
        status = "no answer" if e.last_status is None else f"HTTP {e.last_status}"
        console.print(
            line(
                (str(e.outbox_id), "bold"),
                f"  {e.message_id}  {e.subscription_id}  {e.event_type}  {e.attempts} attempts"
                f"  {status}  {one_line(e.last_error or '')[:160]}",
            ),
            soft_wrap=True,
        )
    console.print(f"{len(rows)} dead webhook(s) shown", markup=False)


@command(webhooks_app, "replay")
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead webhooks' ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead webhook.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Send dead webhooks again (same webhook-id and body), at the next delivery."""
    from sendwise.config import load_settings
    from sendwise.serving.hooks import replay as run_replay
    from sendwise.store import open_store

    if bool(ids) == all_:
        raise InputError("name the dead webhooks' ids, or --all (not both)")
    with open_store(load_settings(project)) as store:
        done = run_replay(store, None if all_ else ids)
    console.print(f"{done} webhook(s) will be sent again", markup=False)


@command(webhooks_app, "deliver")
def deliver(project: ProjectOpt = None) -> None:
    """One delivery pass: new sends and unsubscribes into the outbox, then every due webhook
    (`sendwise serve` does this continuously)."""
    import asyncio

    from sendwise.config import load_settings
    from sendwise.serving.hooks import Dispatcher
    from sendwise.store import open_store

    settings = load_settings(project)
    with open_store(settings) as store:
        report = asyncio.run(Dispatcher(store, settings.webhooks).run_once())
    console.print(
        f"{report.enqueued} enqueued, {report.delivered} delivered, {report.retried} to retry, "
        f"{report.dead} dead",
        markup=False,
    )
