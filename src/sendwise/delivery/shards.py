"""Shards: disjoint parts of a campaign's messages, one per sending process.

A message belongs to shard ``i`` of ``n`` when the first hex digit of its key (a BLAKE2 digest,
so uniform) is ``i`` modulo ``n``. The rule needs no column and no migration, works the same in
SQLite and PostgreSQL (the store claims ``substr(key, 1, 1) IN digits``), and the shards of any
``n`` cover every message exactly once, so a run with 2 workers can be resumed by a run with 1
or 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from sendwise.errors import ConfigError

HEX = "0123456789abcdef"
MAX_SHARDS = len(HEX)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise ConfigError(
                f"shard {self.index} of {self.count}: at most {MAX_SHARDS} shards, numbered from 0"
            )

    @property
    def digits(self) -> tuple[str, ...]:
        """The first key digits of this shard's messages."""
        return tuple(d for d in HEX if int(d, 16) % self.count == self.index)

    def owns(self, key: str) -> bool:
        return key[:1].lower() in self.digits

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"
