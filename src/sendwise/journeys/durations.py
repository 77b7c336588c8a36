"""Durations (``"90s"``, ``"1h"``, ``"1h30m"``, ``"7d"``, ``"2w"``) and local times (``"09:00"``)
as journey definitions write them."""

from __future__ import annotations

import re
from datetime import timedelta

from sendwise.errors import JourneyError

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WHOLE = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[smhdw])+\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX = timedelta(days=3650)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_duration(text: object, where: str) -> timedelta:
    """A positive duration of at most ten years; JourneyError naming ``where`` otherwise."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise JourneyError(
            f'{where}: {_shown(text)} is not a duration (write e.g. "30s", "1h", "7d")'
        )
    seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(text))
    if seconds <= 0 or seconds > MAX.total_seconds():
        raise JourneyError(f"{where}: {_shown(text)} must be above 0 and at most 10 years")
    return timedelta(seconds=seconds)


def parse_clock(text: object, where: str) -> tuple[int, int]:
    """``"HH:MM"`` as (hour, minute)."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if match is None:
        raise JourneyError(
            f'{where}: {_shown(text)} is not a local time (write "09:00" or "best_hour")'
        )
    return int(match.group(1)), int(match.group(2))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
