"""The web console under /console: server-rendered pages over the library (docs/console.md).

:func:`install` adds its routes, its static files (shipped in the package: no CDN) and the
handlers that turn a refused request into an HTML page (403, 404) or a redirect to the log-in.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from sendwise.api.console import actions, pages
from sendwise.api.console.state import (
    PREFIX,
    NeedLogin,
    Refused,
    console_for,
    page,
    session_of,
    to_login,
)
from sendwise.console.users import audit

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, _exc: NeedLogin) -> Response:
        return to_login(request)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        session = session_of(request)
        if request.method == "POST":  # a refused action is in the audit log too
            who = session.user if session is not None and session.user else "?"
            await run_in_threadpool(
                functools.partial(
                    audit,
                    request.app.state.store,
                    who,
                    f"POST {request.url.path}"[:64],
                    outcome="refused",
                    reason=exc.message,
                )
            )
        return page(request, "error.html", code=exc.status, message=exc.message)


def start(app: FastAPI) -> None:
    """At the service's start-up: make the console's state, which starts its warm-up (the
    events folded, the snapshot's columns loaded) in the background."""
    console_for(app)


def stop(app: FastAPI) -> None:
    """Stop the console's job and warm-up threads (at the service's shutdown)."""
    console = getattr(app.state, "console", None)
    if console is not None:
        console.stopping.set()
        console.jobs.stop()
        if console.warming is not None:
            # the warm-up may be rendering a template: let it finish before the store closes
            # (a thread still reading after it would leave a connection open)
            console.warming.join(timeout=60)
