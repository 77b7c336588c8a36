"""The renderer campaigns use, behind the content contract (sendwise.content.message).

:func:`make_renderer` is the one place that chooses it: the content package's template
renderer (sandboxed Jinja templates of the project's ``templates/`` folder and the starters).
:class:`BasicRenderer`, a few plain templates with ``$first_name`` placeholders, serves the
delivery tests that need messages without a warehouse profile.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Mapping
from string import Template
from typing import Any

from sendwise.config import Settings
from sendwise.content.message import EmailRenderer, RenderedEmail
from sendwise.errors import NotFoundError

DEMO_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "demo_a": (
        "$first_name, new arrivals picked for you",
        "Hello $first_name,\n\nour new arrivals are in.\n\nUnsubscribe: $unsubscribe\n",
        "<p>Hello $first_name,</p><p>our new arrivals are in.</p>"
        '<p><a href="$unsubscribe">Unsubscribe</a> · <a href="$preferences">Preferences</a></p>',
    ),
    "demo_b": (
        "$first_name, 10% off this week only",
        "Hello $first_name,\n\ntake 10% off this week.\n\nUnsubscribe: $unsubscribe\n",
        "<p>Hello $first_name,</p><p>take <b>10% off</b> this week.</p>"
        '<p><a href="$unsubscribe">Unsubscribe</a> · <a href="$preferences">Preferences</a></p>',
    ),
}


class BasicRenderer:
    """Plain ``$field`` templates over a few customer fields (HTML-escaped in the HTML part)."""

    def __init__(
        self,
        customers: Mapping[str, Mapping[str, Any]],
        templates: Mapping[str, tuple[str, str, str]] | None = None,
    ) -> None:
        self.customers = customers
        self.templates = {
            name: tuple(Template(part) for part in parts)
            for name, parts in (templates or DEMO_TEMPLATES).items()
        }

    @classmethod
    def from_warehouse(cls, wh: Any) -> BasicRenderer:
        t = wh.table("customer").select("customer_id", "first_name")
        frame = t.to_pandas()
        names = frame["first_name"].astype("string").fillna("there")
        return cls(
            {cid: {"first_name": n} for cid, n in zip(frame["customer_id"], names, strict=True)}
        )

    def render(self, template: str, customer_id: str, *, links: Mapping[str, str]) -> RenderedEmail:
        if template not in self.templates:
            known = ", ".join(sorted(self.templates))
            raise NotFoundError("template", template, f"known templates: {known}")
        fields = {"first_name": "there", **self.customers.get(customer_id, {}), **links}
        subject, text, body = self.templates[template]
        safe = {k: html.escape(str(v)) for k, v in fields.items()}
        return RenderedEmail(
            subject=subject.safe_substitute(fields),
            preheader="",
            html=body.safe_substitute(safe),
            text=text.safe_substitute(fields),
            template=template,
        )

    def render_many(
        self,
        template: str,
        customer_ids: Iterable[str],
        *,
        links: Mapping[str, Mapping[str, str]],
    ) -> Iterator[tuple[str, RenderedEmail]]:
        for cid in customer_ids:
            yield cid, self.render(template, cid, links=links[cid])


def make_renderer(settings: Settings, wh: Any) -> EmailRenderer:
    """The renderer of campaign previews and sends: the project's templates."""
    from sendwise.content.render import Renderer

    return Renderer(settings, wh)
