"""``sendwise publish``: a thin shell over :func:`sendwise.serving.publish.publish`."""

from __future__ import annotations

from sendwise.cli.output import OUT
from sendwise.cli.registry import Project, command, open_warehouse


def show_published(result: object) -> None:
    from sendwise.serving.publish import PublishResult

    assert isinstance(result, PublishResult)
    entered = sum(c["type"] == "segment.entered" for c in result.changes)
    left = sum(c["type"] == "segment.left" for c in result.changes)
    crossed = sum(c["type"] == "score.crossed" for c in result.changes)
    OUT.print(
        f"published snapshot {result.version}: {result.customers:,} profiles, "
        f"{result.recommendations:,} recommendations, {result.products:,} products, "
        f"{result.neighbours:,} item neighbours in {result.seconds:.1f} s"
    )
    if result.previous is not None:
        OUT.print(
            f"since snapshot {result.previous}: {entered:,} segment entries, {left:,} exits, "
            f"{crossed:,} scores across a threshold; {result.webhooks:,} webhooks queued"
        )
    if result.pruned:
        OUT.print(f"pruned snapshot(s) {', '.join(str(v) for v in result.pruned)}")


@command()
def publish(project: Project = None) -> None:
    """Copy profiles, scores, segments and recommendations into the store for the service."""
    from sendwise.serving.publish import publish as run
    from sendwise.store import open_store

    settings, wh = open_warehouse(project)
    with wh, open_store(settings) as store, OUT.steps("publish") as say:
        result = run(wh, store, settings, progress=say)
    show_published(result)
