"""Renders hostile templates under a memory cap, in its own process (for test_content_hostile).

Usage: ``python hostile_worker.py PROJECT CAP_MB`` with a JSON list of template bodies on
stdin; prints one JSON line per body: ``{"ok": chars}``, ``{"error": kind, "message": ...}``
(a TemplateError) or ``{"crash": kind, "message": ...}`` (anything else: a failure). The cap is
on the address space (RLIMIT_AS), set after the imports: CAP_MB more than the process holds.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from sendwise.config import load_settings
from sendwise.content.errors import TemplateError
from sendwise.content.render import Renderer, preview

FRONT = '+++\nsubject = "Hi"\n+++\n'
FOOTER = '<a href="{{ links.unsubscribe }}">Unsubscribe</a>'


def address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def main() -> None:
    project, cap_mb = Path(sys.argv[1]), int(sys.argv[2])
    bodies = json.load(sys.stdin)
    renderer = Renderer(load_settings(project))
    folder = renderer.folders[0]
    folder.mkdir(parents=True, exist_ok=True)
    preview(renderer, "newsletter.html")  # everything imported and warmed up before the cap
    limit = address_space() + cap_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for i, body in enumerate(bodies):
        name = f"hostile_{i}.html"
        (folder / name).write_text(FRONT + body + FOOTER, encoding="utf-8")
        started = time.perf_counter()
        try:
            email = preview(renderer, name)
            out = {"ok": len(email.html) + len(email.text)}
        except TemplateError as exc:
            out = {"error": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:
            out = {"crash": type(exc).__name__, "message": str(exc)[:300]}
        out["seconds"] = round(time.perf_counter() - started, 3)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
