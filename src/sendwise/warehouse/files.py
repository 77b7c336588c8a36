"""Reading a file into the engine as a staging table, keeping every row's place in the file.

A staged file is a temporary DuckDB table with the file's own columns plus ``_k``, the row's
position among the rows that parsed. ``line_of`` turns ``_k`` back into the line number a user
sees in an editor (the CSV header is line 1), taking the lines that failed to parse into account.
Rows that cannot be parsed at all (wrong number of fields, bad quoting, bad UTF-8, malformed
JSON) are kept in a second table with their line number, raw text and the parser's reason.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pyarrow as pa

from sendwise.errors import FormatError, SourceNotFoundError
from sendwise.warehouse.connection import quote, sql_string

if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst", ".bz2"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise FormatError(
        f"{path}: cannot tell the format from the name; use .csv, .csv.gz, .parquet or .jsonl"
    )


def file_sha256(path: Path) -> tuple[str, int | None]:
    """The file's SHA-256 and, for an uncompressed file, its line count (same single read)."""
    digest = hashlib.sha256()
    plain = path.suffix.lower() not in (".gz", ".zst", ".bz2")
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(16 << 20):
            digest.update(chunk)
            if plain:
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    return digest.hexdigest(), (lines + (last != b"\n")) if plain else None


@dataclass
class Staged:
    """A file staged in the engine."""

    path: Path
    format: str
    table: str
    """Engine table: source columns (or ``_text`` for line formats) plus ``_k``."""
    columns: list[str]
    types: dict[str, str]
    parse_errors: str
    """Engine table (_line, raw, reason) of rows that did not parse."""
    read: int = 0
    scratch: list[str] = field(default_factory=list)
    """Further engine tables made from this file (by a preset), dropped with it."""
    read_path: Path = field(default=Path())
    """The file the reader reads: ``path``, or a copy with normalised line endings."""
    temp_files: list[Path] = field(default_factory=list)
    _offsets: str | None = field(default=None, repr=False)
    _line_map: str | None = field(default=None, repr=False)

    def line_of(self, k: str) -> str:
        """SQL giving the file line of the row whose ``_k`` is the SQL expression ``k``."""
        if self.format != "csv":
            return k
        if self._line_map is not None:
            return f"(SELECT m._line FROM {self._line_map} m WHERE m._k = {k})"
        if self._offsets is None:
            return f"({k} + 1)"
        return f"({k} + 1 + coalesce((SELECT max(o.n) FROM {self._offsets} o WHERE o.g < {k}), 0))"

    def raw_of(self, alias: str) -> str:
        """SQL giving the raw row (as JSON text) of the staged row aliased ``alias``."""
        if self.format == "lines":
            return f"{alias}._text"
        cols = ", ".join(f"{sql_string(c)}: {alias}.{quote(c)}" for c in self.columns)
        return f"CAST(to_json({{{cols}}}) AS VARCHAR)"

    def __post_init__(self) -> None:
        if self.read_path == Path():
            self.read_path = self.path

    def drop(self, engine: duckdb.DuckDBPyConnection) -> None:
        for name in (*self.scratch, self.table, self.parse_errors, self._offsets, self._line_map):
            if name:
                engine.execute(f"DROP TABLE IF EXISTS {name}")
        for temp in self.temp_files:
            temp.unlink(missing_ok=True)
        self.temp_files.clear()


def stage(
    engine: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str | None = None,
    *,
    delimiter: str | None = None,
    physical_lines: int | None = None,
) -> Staged:
    """Stage ``path``: ``csv`` (optionally gzipped), ``parquet``, ``jsonl``, or ``lines``
    (every line as one text value, for layouts that are not CSV such as CDNOW's)."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(path)
    fmt = fmt or detect_format(path)
    prefix = f"_sw_{uuid.uuid4().hex[:10]}"
    staged = Staged(path, fmt, f"{prefix}_src", [], {}, f"{prefix}_bad")
    try:
        if fmt == "csv":
            _stage_csv(engine, staged, prefix, delimiter, physical_lines)
        elif fmt == "parquet":
            _stage_parquet(engine, staged)
        elif fmt in ("jsonl", "lines"):
            _stage_lines(engine, staged, json=fmt == "jsonl")
        else:
            raise FormatError(f"{path}: unknown format {fmt!r}")
    except Exception as exc:
        staged.drop(engine)
        if isinstance(exc, FormatError):
            raise
        if type(exc).__module__.startswith(("duckdb", "_duckdb")):
            first = str(exc).strip().splitlines()[0]
            raise FormatError(f"{path}: cannot be read as {fmt}: {first}") from None
        raise
    good = engine.execute(f"SELECT count(*) FROM {staged.table}").fetchone()[0]  # type: ignore[index]
    bad = engine.execute(f"SELECT count(*) FROM {staged.parse_errors}").fetchone()[0]  # type: ignore[index]
    staged.read = int(good) + int(bad)
    return staged


MAX_LINE_BYTES = 2_000_000
"""A CSV record longer than this is rejected (as 'line too long'), not read."""
DELIMITERS = (",", ";", "\t", "|")


def _stage_csv(
    engine: duckdb.DuckDBPyConnection,
    staged: Staged,
    prefix: str,
    delimiter: str | None,
    physical_lines: int | None,
) -> None:
    # The header is read here, not sniffed: DuckDB's sniffer refuses a whole file over one bad
    # row (an unclosed quote, mixed line endings, a huge field) with a message about the sniffer.
    # With the columns given, the reader rejects exactly the rows that are malformed.
    columns, delim = _header(staged, delimiter)
    if _mixed_line_endings(staged.read_path):
        _normalise_line_endings(staged)
    unclosed: list[tuple[int, str]] = []
    _read_csv(engine, staged, prefix, columns, delim)
    while len(unclosed) < MAX_UNCLOSED_QUOTES and (found := _runaway_quote(engine, prefix)):
        # The value that opens on that line swallowed the lines after it: reject that one line
        # and read again without it, so that the rows after it are read as rows.
        unclosed.append(_blank_out_record(staged, found))
        engine.execute(f"DROP TABLE IF EXISTS {staged.table}")
        engine.execute(f"DROP TABLE IF EXISTS {prefix}_rej")
        engine.execute(f"DROP TABLE IF EXISTS {prefix}_scan")
        _read_csv(engine, staged, prefix, columns, delim)
    engine.execute(
        f"CREATE TEMP TABLE {staged.parse_errors} AS SELECT line AS _line,"
        # csv_line keeps the line breaks of blank lines before the row: strip them
        f" left(ltrim(any_value(csv_line), chr(10) || chr(13)), {RAW_CHARS}) AS raw,"
        f" string_agg({_PARSE_REASON}, '; ') AS reason"
        f" FROM {prefix}_rej GROUP BY line"
    )
    engine.execute(f"DROP TABLE IF EXISTS {prefix}_rej")
    engine.execute(f"DROP TABLE IF EXISTS {prefix}_scan")
    _describe(engine, staged)
    good = engine.execute(f"SELECT count(*) FROM {staged.table}").fetchone()[0]  # type: ignore[index]
    bad = engine.execute(f"SELECT count(*) FROM {staged.parse_errors}").fetchone()[0]  # type: ignore[index]
    if physical_lines is None or staged.read_path != staged.path:
        physical_lines = _physical_lines(staged.read_path)
    if physical_lines != 1 + good + bad or unclosed:
        # Blank lines or line breaks inside quoted values: number the records exactly.
        _map_lines(engine, staged, prefix, good)
    elif bad:
        # g: rows that parsed before the j-th bad line; a parsed row k sits after every bad line
        # whose g < k, so its line is k + 1 (the header) + that count.
        staged._offsets = f"{prefix}_off"
        engine.execute(
            f"CREATE TEMP TABLE {staged._offsets} AS SELECT g, max(j) AS n FROM ("
            " SELECT _line - row_number() OVER (ORDER BY _line) - 1 AS g,"
            f" row_number() OVER (ORDER BY _line) AS j FROM {staged.parse_errors}) GROUP BY g"
        )
    for line, raw in unclosed:  # physical lines already: added after the renumbering above
        engine.execute(
            f"INSERT INTO {staged.parse_errors} VALUES (?, ?, ?)",
            [line, raw[:RAW_CHARS], UNCLOSED_REASON],
        )


MAX_UNCLOSED_QUOTES = 20
"""Lines with a runaway quote that are cut out and read around; past that many, the rest of
the file stays one rejected record."""
UNCLOSED_REASON = (
    "bad quoting: a quoted value opens on this line and is never closed; the line is rejected"
    " and the lines after it are read as rows"
)


def _read_csv(
    engine: duckdb.DuckDBPyConnection,
    staged: Staged,
    prefix: str,
    columns: list[str],
    delim: str,
) -> None:
    cols = ", ".join(f"{sql_string(c)}: 'VARCHAR'" for c in columns)
    opts = [
        "header = true",
        "auto_detect = false",
        f"columns = {{{cols}}}",
        f"delim = {sql_string(delim)}",
        "quote = '\"'",
        "escape = '\"'",
        f"max_line_size = {MAX_LINE_BYTES}",
        "store_rejects = true",
        f"rejects_table = '{prefix}_rej'",
        f"rejects_scan = '{prefix}_scan'",
    ]
    src = f"read_csv({sql_string(str(staged.read_path))}, {', '.join(opts)})"
    engine.execute(
        f"CREATE TEMP TABLE {staged.table} AS SELECT *, row_number() OVER () AS _k FROM {src}"
    )


def _runaway_quote(engine: duckdb.DuckDBPyConnection, prefix: str) -> int | None:
    """The record number of the first bad-quoting reject that spans several lines, if any."""
    row = engine.execute(
        f"SELECT min(line) FROM {prefix}_rej WHERE CAST(error_type AS VARCHAR) = 'UNQUOTED VALUE'"
        " AND strpos(rtrim(csv_line, chr(10) || chr(13)), chr(10)) > 0"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _blank_out_record(staged: Staged, record: int) -> tuple[int, str]:
    """Empty the first physical line of record number ``record`` (the reader's numbering, blank
    records included) in a private copy of the file; return (its line, its text)."""
    with _open(staged.read_path) as fh:
        raw = fh.read()
    starts, _ = _record_starts(np.frombuffer(raw, dtype=np.uint8))
    start = int(starts[record - 1]) if record - 1 < starts.size else 0
    end = raw.find(b"\n", start)
    end = len(raw) if end < 0 else end
    line = 1 + raw.count(b"\n", 0, start)
    text = raw[start:end].decode("utf-8", errors="replace").rstrip("\r")
    if staged.read_path == staged.path:
        fd, name = tempfile.mkstemp(prefix="sendwise-", suffix=".csv")
        os.close(fd)
        staged.read_path = Path(name)
        staged.temp_files.append(staged.read_path)
    staged.read_path.write_bytes(raw[:start] + raw[end:])
    return line, text


def _record_starts(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start byte of every record (blank ones included) and the positions of all line breaks:
    a line break ends a record when an even number of quote characters precede it."""
    breaks = np.flatnonzero(data == 10)
    quotes = np.flatnonzero(data == 34)
    breaks_between = breaks[np.searchsorted(quotes, breaks) % 2 == 0] if quotes.size else breaks
    return np.concatenate(([0], breaks_between + 1)), breaks


RAW_CHARS = 10_000
"""The raw text kept of a row that did not parse (a 10 MB line is not copied whole)."""
_PARSE_REASON = (
    "CASE CAST(error_type AS VARCHAR)"
    " WHEN 'UNQUOTED VALUE' THEN 'bad quoting: a quoted value is not closed, or text follows its"
    " closing quote' || CASE WHEN strpos(rtrim(csv_line, chr(10) || chr(13)), chr(10)) > 0"
    " THEN ' (the quote opened on this line runs to line ' || (line + length(rtrim(csv_line,"
    " chr(10) || chr(13))) - length(replace(rtrim(csv_line, chr(10) || chr(13)), chr(10), ''))"
    " ) || ', read as one row)' ELSE '' END"
    " WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line too long: '"
    " || coalesce(regexp_extract(error_message, 'Actual Size:\\s*([0-9]+)', 1), '?')"
    f" || ' bytes, more than the limit of {MAX_LINE_BYTES:,} bytes'"
    " WHEN 'INVALID ENCODING' THEN 'not valid UTF-8 text'"
    " ELSE lower(CAST(error_type AS VARCHAR)) || ': ' || error_message END"
)


def _header(staged: Staged, delimiter: str | None) -> tuple[list[str], str]:
    """The column names of the first line and the delimiter (the given one, tab for .tsv, else
    the most frequent of , ; tab | in the header)."""
    with _open(staged.read_path) as fh:
        head = fh.read(1 << 20)
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if not first.strip():
        raise FormatError(
            f"{staged.path}: the first line is empty; a CSV file starts with its header"
        )
    if delimiter is None:
        if ".tsv" in [s.lower() for s in staged.path.suffixes]:
            delimiter = "\t"
        else:
            counts = {d: first.count(d) for d in DELIMITERS}
            delimiter = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    try:
        names = next(csv.reader([first.replace("\x00", "")], delimiter=delimiter), [])
    except csv.Error as exc:
        raise FormatError(f"{staged.path}: the header line cannot be read: {exc}") from None
    seen: dict[str, int] = {}
    columns = []
    for i, raw in enumerate(names):
        name = raw.strip() or f"column{i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        seen.setdefault(name, 0)
        columns.append(name)
    return columns, delimiter


def _mixed_line_endings(path: Path) -> bool:
    """True when some lines end in CR LF and others in LF alone (a reader refuses such a file)."""
    lf = crlf = 0
    last = b""
    with _open(path) as fh:
        while chunk := fh.read(16 << 20):
            lf += chunk.count(b"\n")
            crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
    return 0 < crlf < lf


def _normalise_line_endings(staged: Staged) -> None:
    """Read a copy of the file whose CR LF are LF: the lines (and their numbers) stay the same."""
    fd, name = tempfile.mkstemp(prefix="sendwise-", suffix=".csv")
    carry = b""
    with _open(staged.read_path) as src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(16 << 20):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            out.write(chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n"))
        out.write(carry)
    staged.read_path = Path(name)
    staged.temp_files.append(Path(name))


def _open(path: Path) -> BinaryIO:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _physical_lines(path: Path) -> int:
    """Lines in the (decompressed) file, counting a last line without a line break."""
    lines, last = 0, b"\n"
    with _open(path) as fh:
        while chunk := fh.read(16 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _map_lines(engine: duckdb.DuckDBPyConnection, staged: Staged, prefix: str, good: int) -> None:
    """Map each parsed row to the physical line its record starts on.

    A line break ends a record unless an odd number of quote characters precede it (RFC 4180
    escapes a quote by doubling it, which keeps the parity). Empty records (blank lines) are
    skipped by the reader, and so are the lines the reader rejected.
    """
    with _open(staged.read_path) as fh:
        data = np.frombuffer(fh.read(), dtype=np.uint8)
    starts, breaks = _record_starts(data)
    ends = np.concatenate((starts[1:] - 1, [data.size]))
    keep = starts < data.size
    starts, ends = starts[keep], ends[keep]
    length = ends - starts
    carriage = np.zeros(starts.size, dtype=bool)
    one = length == 1
    carriage[one] = data[starts[one]] == 13
    empty = (length == 0) | carriage
    # The reader numbers a bad row by its place among all records, blank ones included
    # (not by physical line): that place finds its start byte, and so its real line.
    numbered = [r[0] for r in engine.execute(f"SELECT _line FROM {staged.parse_errors}").fetchall()]
    place = np.asarray(numbered, dtype=np.int64) - 1
    place = place[(place >= 0) & (place < starts.size)]
    bad_starts = starts[place]
    if bad_starts.size:
        fixed = pa.table({"_old": place + 1, "_line": 1 + np.searchsorted(breaks, bad_starts)})
        engine.register("_sw_fixed_lines", fixed)
        engine.execute(
            f"UPDATE {staged.parse_errors} AS e SET _line = f._line FROM _sw_fixed_lines f"
            " WHERE e._line = f._old"
        )
        engine.unregister("_sw_fixed_lines")
    records = starts[~empty][1:]  # the header is the first record
    records = records[~np.isin(records, bad_starts)]
    lines = 1 + np.searchsorted(breaks, records)  # line breaks before the record, + 1
    if lines.size != good:
        logger.warning(
            "%s: could not map rows to lines exactly; line numbers are approximate",
            staged.path.name,
        )
        return
    staged._line_map = f"{prefix}_lines"
    mapping = pa.table({"_k": np.arange(1, good + 1, dtype=np.int64), "_line": lines})
    engine.register(f"{prefix}_lines_arrow", mapping)
    engine.execute(f"CREATE TEMP TABLE {staged._line_map} AS SELECT * FROM {prefix}_lines_arrow")
    engine.unregister(f"{prefix}_lines_arrow")


def _stage_parquet(engine: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    engine.execute(
        f"CREATE TEMP TABLE {staged.table} AS SELECT * EXCLUDE (file_row_number),"
        f" file_row_number + 1 AS _k FROM read_parquet({sql_string(str(staged.path))},"
        " file_row_number = true)"
    )
    engine.execute(
        f"CREATE TEMP TABLE {staged.parse_errors} (_line BIGINT, raw VARCHAR, reason VARCHAR)"
    )
    _describe(engine, staged)


def _stage_lines(engine: duckdb.DuckDBPyConnection, staged: Staged, *, json: bool) -> None:
    # One text column per physical line: a delimiter and quote that never occur split nothing.
    # JSON stays text (DuckDB's JSON functions read text); one copy of each line is enough.
    src = (
        f"read_csv({sql_string(str(staged.path))}, columns = {{'_text': 'VARCHAR'}},"
        " delim = E'\\x1f', quote = '', escape = '', header = false, auto_detect = false,"
        " strict_mode = false)"
    )
    engine.execute(
        f"CREATE TEMP TABLE {staged.table} AS SELECT * FROM ("
        f" SELECT _text, row_number() OVER () AS _k FROM {src})"
        " WHERE _text IS NOT NULL AND trim(_text) <> ''"
    )
    if json:
        not_object = "NOT json_valid(_text) OR json_type(_text) <> 'OBJECT'"
        engine.execute(
            f"CREATE TEMP TABLE {staged.parse_errors} AS SELECT _k AS _line, _text AS raw,"
            " CASE WHEN NOT json_valid(_text) THEN 'not valid JSON'"
            " ELSE 'a JSON line must be an object' END AS reason"
            f" FROM {staged.table} WHERE {not_object}"
        )
        if engine.execute(f"SELECT count(*) FROM {staged.parse_errors}").fetchone()[0]:  # type: ignore[index]
            engine.execute(f"DELETE FROM {staged.table} WHERE {not_object}")
    else:
        engine.execute(
            f"CREATE TEMP TABLE {staged.parse_errors} (_line BIGINT, raw VARCHAR, reason VARCHAR)"
        )
    staged.format = "lines"
    staged.columns = ["_text"]
    staged.types = {"_text": "VARCHAR"}


def _describe(engine: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    rows = engine.execute(f"DESCRIBE {staged.table}").fetchall()
    staged.columns = [r[0] for r in rows if r[0] != "_k"]
    staged.types = {r[0]: r[1] for r in rows if r[0] != "_k"}
