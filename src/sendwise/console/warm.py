"""What the template preview's first answer would pay, paid when the service starts
(docs/adr/0157): each of the project's templates compiled, linted (the findings kept until a
template file changes) and rendered once for a real customer of the published snapshot, which
also loads what the first rendering needs (DuckDB and the SQL compiler behind the slot rules,
the live profile and recommendation readers).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def fingerprint(folders: Iterable[Path]) -> tuple:
    """Every file under ``folders`` with its size and modification time: a template, a block
    or a starter changed, added or removed changes it."""
    out = []
    for folder in folders:
        for root, _dirs, files in os.walk(folder):
            for name in files:
                try:
                    st = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                out.append((root, name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


class LintCache:
    """A template's linter findings, kept while no file of the renderer's template folders
    changed (linting renders the template for a made-up customer: tens of milliseconds a
    view)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[tuple, list[Any]]] = {}
        self._lock = threading.Lock()

    def get(self, renderer: Any, name: str) -> list[Any]:
        from sendwise.content.lint import lint_template

        stamp = fingerprint(renderer.folders)
        found = self._rows.get(name)
        if found is not None and found[0] == stamp:
            return list(found[1])
        problems = lint_template(renderer, name)
        with self._lock:
            self._rows[name] = (stamp, list(problems))
        return problems


def first_customer(store: Any) -> str | None:
    """A customer of the current snapshot (the first by id), or None without one."""
    from sendwise.store.console import snapshot_rows

    version = store.snapshots.current_version()
    if version is None:
        return None
    row = next(iter(snapshot_rows(store, int(version), batch=1)), None)
    return None if row is None else str(row["customer_id"])


def warm_previews(
    renderer: Any,
    serving: Any,
    store: Any,
    lints: LintCache,
    names: Sequence[str],
    *,
    base_url: str,
    key: bytes,
    stop: threading.Event | None = None,
) -> list[str]:
    """Compile, lint and render each template of ``names`` once (for the snapshot's first
    customer), until ``stop`` is set; returns the names rendered. A template that fails is
    logged and skipped: its page shows the error when asked."""
    from sendwise.errors import SendwiseError
    from sendwise.serving.render import render_for

    customer = first_customer(store)
    done = []
    for name in names:
        if stop is not None and stop.is_set():
            break
        try:
            lints.get(renderer, name)
            if customer is not None:
                render_for(serving, renderer, name, customer, base_url=base_url, key=key)
            done.append(name)
        except (SendwiseError, LookupError, OSError) as exc:
            logger.info("console warm-up: template %s not rendered: %s", name, exc)
    return done
