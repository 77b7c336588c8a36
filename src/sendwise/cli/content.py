"""``sendwise templates ...`` and ``sendwise render``: thin shells over sendwise.content."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sendwise.cli.output import OUT, line, styled
from sendwise.cli.registry import Project, command, group, open_warehouse
from sendwise.errors import InputError

templates_app = group("templates", "Email templates: check, tokens, variants.")


def _renderer(project: Path | None):
    from sendwise.content.render import Renderer

    settings, wh = open_warehouse(project)  # the caller closes wh
    return Renderer(settings, wh), wh


def _template_names(renderer) -> list[str]:
    folder = renderer.folders[0] if renderer.folders[0].is_dir() else renderer.folders[1]
    return sorted(
        p.name for p in folder.glob("*.html") if p.read_text(encoding="utf-8").startswith("+++")
    )


@command(templates_app, "check")
def check(
    names: Annotated[
        list[str] | None, typer.Argument(help="Templates to check; default: all in templates/.")
    ] = None,
    project: Project = None,
) -> None:
    """Lint templates: unknown tokens, unsubscribe link, text part, default variants, alt
    text, size. Exit code 1 when a problem is found."""
    from sendwise.content.lint import lint_template

    renderer, wh = _renderer(project)
    with wh:
        chosen = names or _template_names(renderer)
        problems = [p for name in chosen for p in lint_template(renderer, name)]
    for problem in problems:
        OUT.print(str(problem), soft_wrap=True)
    verdict = (
        styled(f"{len(problems)} problem(s)", "red") if problems else styled("no problems", "green")
    )
    OUT.print(line(f"{len(chosen)} template(s) checked: ", verdict))
    if problems:
        raise typer.Exit(1)


@command(templates_app, "tokens")
def tokens(project: Project = None) -> None:
    """Every token templates can use, from the live profile schema."""
    from sendwise.content.tokens import catalogue, profile_schema

    renderer, wh = _renderer(project)
    with wh:
        rows = catalogue(profile_schema(wh), renderer.project_slots)
    table = Table("token", "type", "note", box=None)
    for token in rows:
        table.add_row(token.name, token.type, token.note)
    OUT.print(table)


@command(templates_app, "variants")
def variants(
    name: Annotated[str, typer.Argument(help="Template file, e.g. newsletter.html.")],
    project: Project = None,
) -> None:
    """How many customers get each variant of each slot of a template."""

    renderer, wh = _renderer(project)
    with wh:
        counts = renderer.variant_counts(name)
    if not counts:
        OUT.print(f"{name} has no slots")
    for slot, by_variant in counts.items():
        table = Table("variant", "customers", title=f"slot {slot}", box=None)
        for variant, n in by_variant.items():
            table.add_row(variant, f"{n:,}")
        OUT.print(table)


@command(name="render")
def render(
    template: Annotated[
        str | None,
        typer.Argument(help="Template file, e.g. newsletter.html (optional with --campaign)."),
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Render for this customer id.")] = None,
    segment: Annotated[
        str | None, typer.Option(help="Render for every customer of this segment (--out DIR).")
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Render for a made-up customer.")
    ] = False,
    campaign: Annotated[
        str | None,
        typer.Option(
            help="With --customer and --out FILE.eml: the campaign's message to that customer,"
            " byte for byte as it will be sent (except its Date)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Preview field, e.g. p_purchase=0.2 (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="FILE.html / FILE.eml, or DIR for --segment.")
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="For --segment: eml (MIME) or html.")
    ] = "eml",
    project: Project = None,
) -> None:
    """Render a template for one customer, a segment, or a made-up preview customer; or a
    campaign's message to one customer as it will be sent."""
    from sendwise.content.render import preview as run_preview

    if sum(x is not None and x is not False for x in (customer, segment, preview or None)) != 1:
        raise InputError("give exactly one of --customer ID, --segment NAME or --preview")
    if campaign is not None:
        _render_campaign(campaign, template, customer, out, project)
        return
    if template is None:
        raise InputError("give the template to render, e.g. sendwise render newsletter.html")
    renderer, wh = _renderer(project)
    with wh:
        from sendwise.keys import signing_key

        signing_key(renderer.settings.delivery)  # like serve and send: no public or missing key
        if segment is not None:
            _render_segment(renderer, template, segment, out, format_)
            return
        to: str | None
        if preview:
            from sendwise.content.sample import CUSTOMER

            email = run_preview(renderer, template, _overrides(set_ or []))
            cid, to = "PREVIEW", str(CUSTOMER["email"])
        else:
            from sendwise.delivery.previews import email_of

            cid = str(customer)
            email = renderer.render(template, cid, links=renderer.default_links(cid))
            to = email_of(renderer, [cid]).get(cid) if out is not None else None
        if out is not None:
            from sendwise.delivery.previews import write_one

            write_one(renderer, email, cid, out, to)
    if out is None:
        OUT.print(line(("subject:", "bold"), "   ", email.subject))
        OUT.print(line(("preheader:", "bold"), " ", email.preheader))
        OUT.print(line(("variants:", "bold"), "  ", str(dict(email.slots) or "-")))
        OUT.console.rule("text part")
        OUT.print(email.text)
        return
    OUT.print(line("wrote ", (out, "bold"), f" ({len(email.html.encode()) / 1024:.1f} KB HTML)"))


def _overrides(items: list[str]) -> dict:
    values: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InputError(f"--set takes FIELD=VALUE, e.g. p_purchase=0.2; got {item!r}")
        try:
            values[key.strip()] = float(raw) if re.fullmatch(r"-?[\d.]+", raw) else raw
        except ValueError:
            values[key.strip()] = raw
    return values


def _render_campaign(
    campaign: str, template: str | None, customer: str | None, out: Path | None, project
) -> None:
    from sendwise.campaigns.message_preview import campaign_message
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.store import open_store

    if customer is None or out is None or out.suffix.lower() != ".eml":
        raise InputError("--campaign needs --customer ID and --out FILE.eml")
    settings, wh = open_warehouse(project)
    with wh, open_store(settings) as store:
        msg = campaign_message(store, wh, settings, campaign, customer, make_renderer(settings, wh))
    if template is not None and template != msg.template:
        raise InputError(
            f"campaign {campaign!r} sends customer {customer} variant {msg.variant},"
            f" template {msg.template!r}, not {template!r}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(msg.data)
    OUT.print(
        line(
            "wrote ",
            (out, "bold"),
            f": campaign {campaign}, variant {msg.variant}, template {msg.template},"
            f" to {msg.to}, message {msg.message_key}",
        )
    )


def _render_segment(renderer, template: str, segment: str, out: Path | None, fmt: str) -> None:
    from sendwise.delivery.previews import render_segment

    if out is None:
        raise InputError("--segment needs --out DIR")
    if fmt not in ("eml", "html"):
        raise InputError("--format is eml or html")
    files = render_segment(renderer, template, segment, out, fmt=fmt)
    OUT.print(line(f"wrote {files.written:,} .{fmt} file(s) to ", (out, "bold")))
    if files.no_address:
        example = ", ".join(files.no_address[:3])
        OUT.print(
            f"skipped {len(files.no_address):,} member(s) without an email address"
            f" (e.g. {example}): an .eml needs one; --format html writes them all"
        )
