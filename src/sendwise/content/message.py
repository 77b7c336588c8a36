"""The contract between content (which renders) and delivery (which sends)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RenderedEmail:
    """One personalized message, ready for delivery to wrap in MIME."""

    subject: str
    preheader: str
    html: str
    text: str
    template: str = ""
    slots: Mapping[str, str] = field(default_factory=dict)
    """slot name -> the variant chosen for this customer"""


class EmailRenderer(Protocol):
    """Renders a template for customers. ``links`` gives the per-message URLs the template must
    use: at least ``unsubscribe`` (https one-click page) and ``preferences``; delivery makes them
    (signed) and content puts them in the footer as ``links.unsubscribe`` etc."""

    def render(
        self, template: str, customer_id: str, *, links: Mapping[str, str]
    ) -> RenderedEmail: ...

    def render_many(
        self,
        template: str,
        customer_ids: Iterable[str],
        *,
        links: Mapping[str, Mapping[str, str]],
    ) -> Iterator[tuple[str, RenderedEmail]]: ...
