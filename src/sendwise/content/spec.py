"""A template file's front matter: subject, preheader, text part, slots and options.

A template starts with TOML between two ``+++`` lines::

    +++
    subject = "{{ customer.first_name or 'Hello' }}, new picks for you"
    preheader = "Chosen from what you looked at this week"
    recommendations = 6          # how many products ``recommendations`` holds
    text = "auto"                # or a file beside the template, e.g. "newsletter.txt"

    [[slots.offer]]              # first matching rule wins; the variant without a rule is the
    name = "premium"             # default and is required
    rule = "p_purchase > 0.8"
    block = "blocks/offer-premium.html"
    +++
    {% extends "layout.html" %} ...

The front matter is replaced by blank lines before Jinja sees the body, so line numbers in
errors and lint reports are the file's own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sendwise.content.errors import TemplateError

FENCE = "+++"
KNOWN_KEYS = {"subject", "preheader", "recommendations", "text", "mjml", "slots", "description"}


@dataclass(frozen=True)
class Variant:
    name: str
    block: str
    rule: str | None = None
    """None for the default variant."""


@dataclass(frozen=True)
class Slot:
    name: str
    variants: tuple[Variant, ...]

    @property
    def default(self) -> Variant | None:
        return next((v for v in self.variants if v.rule is None), None)

    @property
    def ruled(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.rule is not None)


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    body: str
    """The Jinja body, front matter blanked out (same line numbers as the file)."""
    subject: str = ""
    preheader: str = ""
    recommendations: int = 6
    text: str = "auto"
    mjml: bool = False
    description: str = ""
    slots: dict[str, Slot] = field(default_factory=dict)
    front_lines: dict[str, int] = field(default_factory=dict)
    """front-matter key -> its line in the file, for lint reports"""


def split_front_matter(source: str, name: str) -> tuple[dict[str, Any], str, dict[str, int]]:
    """(front matter, body with the front matter blanked, key -> line)."""
    lines = source.split("\n")
    if not lines or lines[0].strip() != FENCE:
        return {}, source, {}
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
    except StopIteration:
        msg = "front matter opened with +++ is never closed"
        raise TemplateError(msg, file=name, line=1) from None
    text = "\n".join(lines[1:end])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"front matter is not valid TOML: {exc}", file=name, line=1) from None
    where: dict[str, int] = {}
    for i, line in enumerate(lines[1:end], start=2):
        key = line.split("=", 1)[0].strip().strip("[]").removeprefix("slots.")
        if key and not line.lstrip().startswith("#"):
            where.setdefault(key, i)
    body = "\n" * end + "\n" + "\n".join(lines[end + 1 :])
    return data, body, where


def parse_slots(raw: Any, name: str) -> dict[str, Slot]:
    if not isinstance(raw, dict):
        raise TemplateError("slots must be a table of slot name -> list of variants", file=name)
    slots = {}
    for slot_name, variants in raw.items():
        if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
            msg = f"slot {slot_name!r}: give its variants as [[slots.{slot_name}]] tables"
            raise TemplateError(msg, file=name)
        parsed = []
        for v in variants:
            unknown = set(v) - {"name", "rule", "block"}
            if unknown or "name" not in v or "block" not in v:
                msg = f"slot {slot_name!r}: a variant needs name and block (and rule, but for"
                msg += (
                    f" the default){'; unknown: ' + ', '.join(sorted(unknown)) if unknown else ''}"
                )
                raise TemplateError(msg, file=name)
            parsed.append(Variant(str(v["name"]), str(v["block"]), v.get("rule")))
        slots[slot_name] = Slot(slot_name, tuple(parsed))
    return slots


def parse_spec(
    source: str, name: str, project_slots: dict[str, Slot] | None = None
) -> TemplateSpec:
    """The template ``name`` (its text in ``source``) as a spec; raises TemplateError."""
    data, body, where = split_front_matter(source, name)
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        msg = f"unknown front matter key(s): {', '.join(sorted(unknown))}"
        raise TemplateError(msg, file=name, line=where.get(sorted(unknown)[0], 1))
    count = data.get("recommendations", 6)
    if not isinstance(count, int) or not 0 <= count <= 50:
        raise TemplateError("recommendations must be a number from 0 to 50", file=name)
    slots = {**(project_slots or {}), **parse_slots(data.get("slots", {}), name)}
    return TemplateSpec(
        name=name,
        body=body,
        subject=str(data.get("subject", "")),
        preheader=str(data.get("preheader", "")),
        recommendations=count,
        text=str(data.get("text", "auto")),
        mjml=bool(data.get("mjml", name.endswith(".mjml"))),
        description=str(data.get("description", "")),
        slots=slots,
        front_lines=where,
    )


def inside(folders: list[Path], path: Path) -> bool:
    """True when ``path``, symlinks resolved, is a file inside one of ``folders`` (resolved)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL in the path
        return False
    return real.is_file() and any(real.is_relative_to(f.resolve()) for f in folders)


def read_spec(
    folder: Path, name: str, project_slots: dict[str, Slot] | None = None
) -> TemplateSpec:
    path = folder / name
    if path.is_file() and not inside([folder], path):
        msg = "a link to a file outside the templates folder; templates are read only from it"
        raise TemplateError(msg, file=name)
    if not path.is_file():
        from sendwise.errors import NotFoundError

        known = ", ".join(sorted(p.name for p in folder.glob("*.html"))) if folder.is_dir() else ""
        raise NotFoundError("template", name, f"templates in {folder}: {known or 'none'}")
    return parse_spec(path.read_text(encoding="utf-8"), name, project_slots)
