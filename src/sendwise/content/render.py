"""The renderer: compiled templates + each customer's tokens -> RenderedEmail.

:class:`Renderer` implements the :class:`~sendwise.content.message.EmailRenderer` contract that
delivery sends through. Templates compile once (first use) and stay cached; the tokens of many
customers are read from the warehouse in chunks, with the slot variants chosen in the same query.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Template

from sendwise.content import data
from sendwise.content.compiler import STARTERS, CompiledTemplate, compile_template, environments
from sendwise.content.errors import TemplateError, UnsafeTemplateError
from sendwise.content.failures import RENDER_ERRORS, render_error
from sendwise.content.fields import profile_fields
from sendwise.content.htmltext import tidy
from sendwise.content.limits import MAX_OUTPUT, reset_budget
from sendwise.content.message import RenderedEmail
from sendwise.content.reader import TokenReader, schema_version
from sendwise.content.slots import variant_counts
from sendwise.content.spec import Slot, Variant, inside, read_spec

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
MAX_HTML = 1_000_000
"""A message larger than this is refused: no real email is, a runaway template is."""


class Renderer:
    """Renders templates of a project for its customers (``wh`` is needed for real customers,
    not for :meth:`render_context` and previews)."""

    def __init__(self, settings: Settings, wh: Warehouse | None = None) -> None:
        self.settings, self.wh = settings, wh
        self.folders = [settings.path(settings.content.templates), STARTERS]
        self._envs = environments(self.folders)
        self._compiled: dict[str, CompiledTemplate] = {}
        self._globals = dict(self._envs[0].globals)
        self._bestsellers: list[dict] | None = None
        self._readers: dict[tuple[str, bool], TokenReader] = {}
        s = settings.content.shop
        self.shop = {k: getattr(s, k) for k in ("name", "url", "postal_address", "logo_url")}
        self.shop["currency"] = s.currency
        self.project_slots = {
            name: Slot(name, tuple(Variant(v.name, v.block, v.rule) for v in variants))
            for name, variants in settings.content.slots.items()
        }

    # -- templates -------------------------------------------------------------------------
    def template(self, name: str) -> CompiledTemplate:
        """The compiled template ``name`` (compiled on first use, then cached)."""
        if name not in self._compiled:
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise TemplateError("a template is named by its path inside templates/", file=name)
            folder = next((f for f in self.folders if inside([f], f / name)), self.folders[0])
            spec = read_spec(folder, name, self.project_slots)
            self._compiled[name] = compile_template(spec, self.folders, self._envs)
        return self._compiled[name]

    def default_links(self, customer_id: str) -> dict[str, str]:
        """Unsigned links for previews and files (delivery passes signed ones when sending)."""
        c, url = self.settings.content, self.shop["url"].rstrip("/")
        fill = {"shop_url": url, "customer_id": customer_id}
        return {
            "unsubscribe": c.unsubscribe_url.format(**fill),
            "preferences": c.preferences_url.format(**fill),
            "shop": url,
        }

    # -- one message -----------------------------------------------------------------------
    def render_context(
        self, template: str | CompiledTemplate, tokens: dict[str, Any], links: Mapping[str, str]
    ) -> RenderedEmail:
        """Render with ``tokens`` (customer, profile, scores, segments, recommendations, slots);
        shop and links are added here."""
        compiled = template if isinstance(template, CompiledTemplate) else self.template(template)
        if not links.get("unsubscribe"):
            raise TemplateError("links must hold an unsubscribe URL", file=compiled.spec.name)
        ctx = {**self._globals, **tokens, "shop": self.shop, "links": links}
        reset_budget(tokens.values())
        part = "subject"
        try:
            subject = " ".join(_run(compiled.subject, ctx).split()) or self.shop["name"]
            part = "preheader"
            ctx["preheader"] = preheader = " ".join(_run(compiled.preheader, ctx).split())
            part = "html"
            html = _run(compiled.html, ctx)
            part = "text"
            text = tidy(_run(compiled.text, ctx))
        except RENDER_ERRORS as exc:
            raise render_error(compiled, part, exc) from None
        if len(html) > MAX_HTML:
            raise UnsafeTemplateError("HTML over 1 MB", file=compiled.spec.name)
        return RenderedEmail(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            template=compiled.spec.name,
            slots=tokens.get("slots", {}),
        )

    # -- customers from the warehouse ------------------------------------------------------
    def tokens(self, template: str, customer_ids: Iterable[str] | None) -> Iterator[tuple]:
        """(customer_id, tokens) for these customers (all when None), in chunks."""
        if self.wh is None:
            raise TemplateError("rendering real customers needs the warehouse")
        yield from self._reader(template).tokens(customer_ids, self.bestsellers)

    def _reader(self, template: str, *, only_used: bool = False) -> TokenReader:
        """The template's token reader; on DuckDB kept while the warehouse handle and the
        tables' columns stay the same (its queries are compiled once), elsewhere made per call.
        ``only_used``: tokens for rendering, with only the profile fields the template reads."""
        compiled = self.template(template)
        reader = self._readers.get((template, only_used))
        wh = self.wh
        if wh is None:
            raise TemplateError("rendering real customers needs the warehouse")
        fresh = reader is not None and reader.wh is wh and reader.version is not None
        if reader is None or not (fresh and reader.version == schema_version(wh)):
            fields = self._fields(compiled) if only_used else None
            reader = TokenReader(wh, self.settings, compiled.spec, fields)
            self._readers[(template, only_used)] = reader
        return reader

    def _fields(self, compiled: CompiledTemplate) -> frozenset[str] | None:
        spec = compiled.spec
        sources = (spec.subject, spec.preheader, compiled.html_source, compiled.text_source)
        return profile_fields(self._envs[1], sources)

    def with_warehouse(self, wh: Warehouse) -> Renderer:
        """This renderer (its compiled templates too) reading from ``wh``: another handle on
        the same warehouse, such as a sending process's own."""
        clone = copy.copy(self)
        clone.wh = wh
        clone._readers = {}  # their queries run on the handle they were made with
        return clone

    def bestsellers(self) -> list[dict]:
        if self._bestsellers is None:
            self._bestsellers = data.bestsellers(self.wh, self.settings) if self.wh else []
        return self._bestsellers

    def render(self, template: str, customer_id: str, *, links: Mapping[str, str]) -> RenderedEmail:
        for _, tokens in self.tokens(template, [customer_id]):
            return self.render_context(template, tokens, links)
        from sendwise.errors import NotFoundError

        raise NotFoundError("customer", customer_id, "no profile: build profiles first")

    def render_many(
        self,
        template: str,
        customer_ids: Iterable[str],
        *,
        links: Mapping[str, Mapping[str, str]],
    ) -> Iterator[tuple[str, RenderedEmail]]:
        """Render for each customer with a profile (others are skipped, with a warning)."""
        compiled = self.template(template)
        if self.wh is None:
            raise TemplateError("rendering real customers needs the warehouse")
        reader = self._reader(template, only_used=True)
        for cid, tokens in reader.tokens(customer_ids, self.bestsellers):
            if cid not in links:
                raise TemplateError(f"no links given for customer {cid}", file=template)
            yield cid, self.render_context(compiled, tokens, links[cid])

    def variant_counts(self, template: str) -> dict[str, dict[str, int]]:
        """slot -> variant -> customers, over every profile."""
        if self.wh is None:
            raise TemplateError("counting variants needs the warehouse")
        compiled = self.template(template)
        return variant_counts(data.profile_table(self.wh), compiled.spec.slots, template)


def _run(template: Template, ctx: dict[str, Any]) -> str:
    """``template.render(ctx)`` without its copy of the context and the globals: a third of the
    time of a short template. ``ctx`` already holds the globals and is not changed. Stops at
    MAX_OUTPUT characters (a loop printing a large value many times)."""
    parts: list[str] = []
    append, total, limit = parts.append, 0, MAX_OUTPUT
    pieces = template.root_render_func(template.new_context(ctx, shared=True))
    for piece in pieces:
        total += len(piece)
        if total > limit:  # raised where the template is, for its line
            pieces.throw(UnsafeTemplateError(f"output over {MAX_OUTPUT:,} characters"))  # type: ignore[attr-defined]
        append(piece)
    return "".join(parts)


def preview(
    renderer: Renderer, template: str, overrides: dict[str, Any] | None = None
) -> RenderedEmail:
    """The template rendered for a made-up customer (see :mod:`.sample`), for designing."""
    from sendwise.content.sample import sample_tokens
    from sendwise.content.tokens import profile_schema

    compiled = renderer.template(template)
    n = compiled.spec.recommendations
    products = renderer.bestsellers()[:n] if renderer.wh is not None else []
    tokens = sample_tokens(
        renderer.settings,
        compiled.spec.slots,
        schema=profile_schema(renderer.wh),
        products=products or None,
        n=n,
        overrides=overrides,
    )
    return renderer.render_context(compiled, tokens, renderer.default_links("PREVIEW"))


class DefaultLinks(Mapping[str, Mapping[str, str]]):
    """Every customer's preview links, made on demand (for the CLI and the demo)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def __getitem__(self, customer_id: str) -> Mapping[str, str]:
        return self.renderer.default_links(customer_id)

    def __contains__(self, customer_id: object) -> bool:
        return isinstance(customer_id, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
