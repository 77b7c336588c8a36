"""The journeys page: each journey's flow drawn with the customers at each step, its status
(pause and resume), and how its customers ended, from the journey engine's own status
(:meth:`sendwise.journeys.engine.JourneyEngine.status`)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from sendwise.console.charts import PALETTE

BOX_W, BOX_H, GAP, LEFT = 300, 46, 26, 20


def _summary(step: dict[str, Any]) -> str:
    for kind in ("wait", "wait_until", "wait_for", "send", "if", "split", "update", "webhook"):
        if kind in step:
            value = step[kind]
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            return f"{kind} {value}"
    return "exit" if step.get("exit") else "?"


def flow(definition: dict[str, Any], at_step: dict[str, int]) -> Markup:
    """The steps top to bottom (the order they are written in), each with the customers at it
    now; branches (then / else / next) written beside the box they leave from."""
    steps = list(definition.get("steps") or [])
    height = 60 + len(steps) * (BOX_H + GAP)
    trigger = definition.get("trigger") or {}
    shown = ", ".join(f"{k} {v}" for k, v in trigger.items())
    parts = [
        f'<svg class="chart flow" viewBox="0 0 640 {height}" role="img" '
        'aria-label="journey flow" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{LEFT}" y="20" class="legend">trigger: {escape(shown[:90])}</text>',
    ]
    y = 34
    for i, step in enumerate(steps):
        sid = str(step.get("id", f"step {i + 1}"))
        n = at_step.get(sid, 0)
        colour = PALETTE[0] if n else "#9ca3af"
        parts.append(
            f'<rect x="{LEFT}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#fff" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{LEFT + 10}" y="{y + 18}" class="flow-id">{escape(sid[:40])}</text>'
            f'<text x="{LEFT + 10}" y="{y + 36}" class="legend">'
            f"{escape(_summary(step)[:48])}</text>"
            f'<text x="{LEFT + BOX_W + 12}" y="{y + 28}" class="flow-n">{n:,} here</text>'
        )
        links = [f"{k} → {step[k]}" for k in ("then", "else", "next") if step.get(k)]
        if links:
            parts.append(
                f'<text x="{LEFT + BOX_W + 110}" y="{y + 28}" class="legend">'
                f"{escape('; '.join(links)[:60])}</text>"
            )
        if i < len(steps) - 1:
            x = LEFT + BOX_W / 2
            parts.append(
                f'<line x1="{x}" y1="{y + BOX_H}" x2="{x}" y2="{y + BOX_H + GAP - 4}" '
                'class="whisker"/>'
                f'<polygon points="{x - 4},{y + BOX_H + GAP - 8} {x + 4},{y + BOX_H + GAP - 8} '
                f'{x},{y + BOX_H + GAP - 2}" fill="#111827"/>'
            )
        y += BOX_H + GAP
    parts.append("</svg>")
    return Markup("".join(parts))


def _engine(store: Any, settings: Any, serving: Any) -> Any:
    from sendwise.journeys.engine import JourneyEngine

    return JourneyEngine(store, settings, serving)


def journeys(store: Any, settings: Any, serving: Any) -> list[dict[str, Any]]:
    engine = _engine(store, settings, serving)
    out = []
    for rec in store.journeys.all():
        status = engine.status(rec.name)
        out.append({"rec": rec, "status": status})
    return out


def journey(store: Any, settings: Any, serving: Any, name: str) -> dict[str, Any] | None:
    rec = store.journeys.get(name)
    if rec is None:
        return None
    status = _engine(store, settings, serving).status(name)
    return {"rec": rec, "status": status, "flow": flow(rec.definition, status.at_step)}


def set_status(store: Any, settings: Any, serving: Any, name: str, paused: bool) -> None:
    engine = _engine(store, settings, serving)
    (engine.pause if paused else engine.resume)(name)
