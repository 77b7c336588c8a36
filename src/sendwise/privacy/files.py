"""One person in the files of the project folder: outbox messages, rendered previews, data
files (simulated or exported tables, synced engagement), reports.

Erasure deletes the outbox file of each of their messages by its key, then walks the folder:
a file whose name names them is deleted (a preview is named by the customer id); a Parquet,
CSV or JSON-lines file loses their rows; a message (.eml, .html) that names them is deleted;
any other text file has their identifiers replaced by ``[erased]``. The warehouse, the store and
the secrets folder are left to their own erasure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TOKEN = re.compile(rb"[\w.%+@-]+")
WORD = re.compile(rb"\w+")
ROW_FILES = (".csv", ".tsv", ".jsonl", ".ndjson")
MESSAGES = (".eml", ".html", ".htm")
MAX_TEXT = 512 * 1024 * 1024
PEOPLE_COLUMNS = ("customer_id", "user_id", "email", "anonymous_id", "userId", "anonymousId")


def words_in(data: bytes) -> set[str]:
    """The identifier-like words of a text, lower case."""
    low = data.lower()
    return {w.decode("utf-8", "replace") for w in (*TOKEN.findall(low), *WORD.findall(low))}


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if (here / d).resolve() not in skip]
        for name in files:
            path = here / name
            if path.resolve() not in skip and path.is_file() and not path.is_symlink():
                yield path


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".erasing")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _parquet(path: Path, words: set[str]) -> int:
    table = pq.read_table(path)
    cols = [c for c in table.column_names if c in PEOPLE_COLUMNS]
    if not cols:
        return 0
    wanted = pa.array(sorted(words), pa.string())
    hit = None
    for c in cols:
        col = pc.utf8_lower(pc.cast(table[c], pa.string()))
        m = pc.fill_null(pc.is_in(col, value_set=wanted), False)
        hit = m if hit is None else pc.or_(hit, m)
    n = int(pc.sum(hit).as_py() or 0) if hit is not None else 0
    if n:
        kept = table.filter(pc.invert(hit))
        tmp = path.with_name(path.name + ".erasing")
        pq.write_table(kept, tmp)
        os.replace(tmp, path)
    return n


def _text(path: Path, words: set[str], patterns: list[bytes]) -> str | None:
    """What was done to a non-Parquet file that names the people (None: it does not)."""
    if path.stat().st_size > MAX_TEXT:
        return None
    data = path.read_bytes()
    if not (words & words_in(data)) and not any(p in data for p in patterns):
        return None
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() in MESSAGES:
        path.unlink()
        return "deleted"
    if any(suffix.endswith(s) for s in ROW_FILES):
        lines = data.splitlines(keepends=True)
        kept = [ln for ln in lines[:1]] + [
            ln
            for ln in lines[1:]
            if not (words & words_in(ln)) and not any(p in ln for p in patterns)
        ]
        _atomic(path, b"".join(kept))
        return "rows removed"
    if b"\0" in data[:4096]:  # binary: nothing to edit safely
        path.unlink()
        return "deleted"
    rx = re.compile(
        b"|".join(re.escape(w.encode()) for w in sorted(words, key=len, reverse=True)),
        re.IGNORECASE,
    )
    out = rx.sub(b"[erased]", data)
    for p in patterns:
        out = out.replace(p, b"[erased]")
    _atomic(path, out)
    return "redacted"


def erase_files(
    root: Path,
    skip: Iterable[Path],
    outbox: Path,
    message_keys: Iterable[str],
    words: set[str],
    patterns: Iterable[str] = (),
) -> dict[str, int]:
    """Remove the people from the files under ``root`` (except ``skip``); counts by kind."""
    counts: dict[str, int] = {}

    def count(kind: str, n: int = 1) -> None:
        counts[kind] = counts.get(kind, 0) + n

    for key in message_keys:
        target = outbox / f"{key}.eml"
        if target.is_file():
            target.unlink()
            count("outbox messages")
    words = {w.lower() for w in words if w}
    raw = [p.encode() for p in patterns if p]
    skipped = {p.resolve() for p in skip}
    for path in list(_walk(root, skipped)):
        name_words = words_in(path.name.encode())
        if words & name_words:
            path.unlink()
            count("files named after them")
            continue
        if path.suffix.lower() == ".parquet":
            n = _parquet(path, words)
            if n:
                count("parquet rows", n)
            continue
        done = _text(path, words, raw)
        if done is not None:
            count(f"files {done}")
    return counts


def find_in_files(
    root: Path, needles: Iterable[bytes], skip: Iterable[Path] = ()
) -> list[tuple[Path, bytes]]:
    """Every (file, needle) whose bytes contain the needle (case-insensitive): a check."""
    found: list[tuple[Path, bytes]] = []
    low = [n.lower() for n in needles if n]
    for path in _walk(root, {p.resolve() for p in skip}):
        data = path.read_bytes().lower()
        found += [(path, n) for n in low if n in data]
    return found
