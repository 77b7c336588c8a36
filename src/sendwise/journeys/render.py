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
    """``profiles``: the journey engine's :class:`~sendwise.serving.batch_profiles.
    BatchProfiles`, so a message reuses the live profile its step's facts were read from
    (ADR 0129); ``render_many`` reads those it lacks together."""

    def __init__(
        self, settings: Any, serving: Any, renderer: Any = None, *, profiles: Any = None
    ) -> None:
        from sendwise.content.render import Renderer
        from sendwise.serving.batch_profiles import BatchProfiles

        self.settings, self.serving = settings, serving
        self.renderer = renderer if renderer is not None else Renderer(settings)
        self.profiles = profiles if profiles is not None else BatchProfiles(serving)

    def tokens(
        self, template: str, customer_id: str, lp: Any = None, recommended: Any = None
    ) -> dict[str, Any]:
        from sendwise.serving.render import tokens_for

        if lp is None:
            lp = self.profiles.get(customer_id)
        if lp is None:  # nothing published, or a customer it does not know yet
            return _bare(customer_id)
        try:
            return tokens_for(self.serving, self.renderer, template, customer_id, lp=lp,
                              recommended=recommended)  # fmt: skip
        except NotFoundError:  # the version was pruned and nothing replaced it
            return _bare(customer_id)

    def render(
        self,
        template: str,
        customer_id: str,
        *,
        links: Mapping[str, str],
        lp: Any = None,
        recommended: Any = None,
    ) -> RenderedEmail:
        tokens = self.tokens(template, customer_id, lp, recommended)
        return self.renderer.render_context(template, tokens, links)

    def render_many(
        self,
        template: str,
        customer_ids: Iterable[str],
        *,
        links: Mapping[str, Mapping[str, str]],
    ) -> Iterator[tuple[str, RenderedEmail]]:
        ids = list(customer_ids)
        lps = self.profiles.get_many(ids)
        n = self.renderer.template(template).spec.recommendations
        recs = self.serving.recommendations_many(lps, n) if n and lps else {}
        for cid in ids:
            yield cid, self.render(template, cid, links=links[cid], lp=lps.get(cid),
                                   recommended=recs.get(cid))  # fmt: skip


def _bare(customer_id: str) -> dict[str, Any]:
    """The tokens of a customer with no live profile: their id, the templates' defaults."""
    tokens = split_row({"customer_id": customer_id}, {})
    tokens["recommendations"] = []
    return tokens
