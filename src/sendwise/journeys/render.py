"""``LiveRenderer``: journey emails rendered from the live profile, not the warehouse.

It implements :class:`sendwise.content.message.EmailRenderer` for the send pipeline with the
tokens of ``POST /v1/render`` (:func:`sendwise.serving.render.tokens_for`): the published
snapshot plus the events since, with real-time recommendations. So a customer first seen a
minute ago can be sent a message; before anything is published, the tokens hold what the
events say (the customer id, the live fields) and templates fall back on their defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sendwise.content.data import split_row
from sendwise.content.message import RenderedEmail
from sendwise.errors import NotFoundError


class LiveRenderer:
    def __init__(self, settings: Any, serving: Any, renderer: Any = None) -> None:
        from sendwise.content.render import Renderer

        self.settings, self.serving = settings, serving
        self.renderer = renderer if renderer is not None else Renderer(settings)

    def tokens(self, template: str, customer_id: str) -> dict[str, Any]:
        from sendwise.serving.render import tokens_for

        try:
            return tokens_for(self.serving, self.renderer, template, customer_id)
        except NotFoundError:  # nothing published, or a customer it does not know yet
            tokens = split_row({"customer_id": customer_id}, {})
            tokens["recommendations"] = []
            return tokens

    def render(self, template: str, customer_id: str, *, links: Mapping[str, str]) -> RenderedEmail:
        return self.renderer.render_context(template, self.tokens(template, customer_id), links)

    def render_many(
        self,
        template: str,
        customer_ids: Iterable[str],
        *,
        links: Mapping[str, Mapping[str, str]],
    ) -> Iterator[tuple[str, RenderedEmail]]:
        for cid in customer_ids:
            yield cid, self.render(template, cid, links=links[cid])
