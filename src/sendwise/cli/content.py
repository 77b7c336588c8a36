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
    template: Annotated[str, typer.Argument(help="Template file, e.g. newsletter.html.")],
    customer: Annotated[str | None, typer.Option(help="Render for this customer id.")] = None,
    segment: Annotated[
        str | None, typer.Option(help="Render for every customer of this segment (--out DIR).")
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Render for a made-up customer.")
    ] = False,
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
    """Render a template for one customer, a segment, or a made-up preview customer."""
    from sendwise.content.render import preview as run_preview

    if sum(x is not None and x is not False for x in (customer, segment, preview or None)) != 1:
        raise InputError("give exactly one of --customer ID, --segment NAME or --preview")
    renderer, wh = _renderer(project)
    with wh:
        from sendwise.keys import signing_key

        signing_key(renderer.settings.delivery)  # like serve and send: no public or missing key
        if segment is not None:
            _render_segment(renderer, template, segment, out, format_)
            return
        if preview:
            email = run_preview(renderer, template, _overrides(set_ or []))
            cid = "PREVIEW"
        else:
            cid = str(customer)
            email = renderer.render(template, cid, links=renderer.default_links(cid))
    if out is None:
        OUT.print(line(("subject:", "bold"), "   ", email.subject))
        OUT.print(line(("preheader:", "bold"), " ", email.preheader))
        OUT.print(line(("variants:", "bold"), "  ", str(dict(email.slots) or "-")))
        OUT.console.rule("text part")
        OUT.print(email.text)
        return
    _write_one(renderer, email, cid, out)
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


def _write_one(renderer, email, customer_id: str, out: Path) -> None:
    from sendwise.content.batch import write_message

    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("html", "eml"):
        raise InputError(f"{out}: write a message as .html or .eml")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_message(renderer, email, None, out, fmt)


def _render_segment(renderer, template: str, segment: str, out: Path | None, fmt: str) -> None:
    from sendwise.content.batch import render_segment

    if out is None:
        raise InputError("--segment needs --out DIR")
    if fmt not in ("eml", "html"):
        raise InputError("--format is eml or html")
    written = render_segment(renderer, template, segment, out, fmt=fmt)
    OUT.print(line(f"wrote {written:,} .{fmt} file(s) to ", (out, "bold")))
