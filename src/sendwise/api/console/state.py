"""The console's per-app state and the request checks every page and action goes through:
who is logged in (the signed session cookie), what their role allows, the CSRF token of a
form, and the security headers of every answer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from sendwise.console.campaign_views import CountsCache
from sendwise.console.jobs import JobRunner
from sendwise.console.sessions import COOKIE, Session, SessionSigner, csrf_ok
from sendwise.console.tally import Tally
from sendwise.console.users import PERMISSIONS
from sendwise.console.warm import LintCache, warm_previews
from sendwise.serving.console_columns import ColumnsCache
from sendwise.store.console import UserRecord

logger = logging.getLogger(__name__)
PREFIX = "/console"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https: http:; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class Refused(Exception):
    """A request the console refuses: rendered as an HTML page with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class NeedLogin(Exception):
    """No valid session: the browser is sent to the log-in page."""


@dataclass
class ConsoleState:
    signer: SessionSigner
    columns: ColumnsCache
    tally: Tally
    jobs: JobRunner
    env: Environment
    secure: bool
    counts: CountsCache
    store: Any = None
    lints: LintCache = field(default_factory=LintCache)
    stopping: threading.Event = field(default_factory=threading.Event)
    warming: threading.Thread | None = None


def make_env() -> Environment:
    env = Environment(
        loader=PackageLoader("sendwise.api.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v, d=0: "-" if v is None else f"{float(v):,.{d}f}"
    env.filters["pct"] = lambda v, d=1: "-" if v is None else f"{100 * float(v):.{d}f}%"
    return env


def console_of(request: Request) -> ConsoleState:
    return console_for(request.app)


def console_for(app: Any) -> ConsoleState:
    """The app's console state, made (and its warm-up started) on first use: at the
    service's start-up (the lifespan), or by a test's first request."""
    state = app.state
    found: ConsoleState | None = getattr(state, "console", None)
    if found is None or found.store is not state.store:
        from sendwise.keys import key_ring

        settings = state.settings
        hours = settings.console.session_hours
        found = ConsoleState(
            signer=SessionSigner(key_ring(settings.delivery).current, hours * 3600),
            columns=ColumnsCache(state.store, settings),
            tally=Tally(state.store),
            jobs=JobRunner(state.store),
            env=make_env(),
            secure=settings.console.secure_cookie,
            counts=CountsCache(),
            store=state.store,
        )
        state.console = found
        found.warming = warm_up(found, previews=lambda: warm_templates(state, found))
    return found


def renderer_of(state: Any) -> Any:
    """The app's template renderer (compiled templates kept), made on first use."""
    if getattr(state, "renderer", None) is None:
        from sendwise.content.render import Renderer

        state.renderer = Renderer(state.settings)
    return state.renderer


def warm_templates(state: Any, console: ConsoleState) -> None:
    """The console's page templates and the project's e-mail templates compiled, linted and
    rendered once for a real customer, so the first preview a user asks for does not pay for
    them (docs/adr/0157)."""
    from sendwise.console.views import template_names
    from sendwise.serving.service import Serving

    for name in console.env.list_templates(extensions=["html"]):
        console.env.get_template(name)
    if getattr(state, "serving", None) is None:  # as api.profiles.serving_of makes it
        state.serving = Serving(state.store, state.settings, clock=state.clock)
    warm_previews(
        renderer_of(state),
        state.serving,
        console.store,
        console.lints,
        template_names(state.settings),
        base_url=state.settings.delivery.base_url,
        key=state.key.current,
        stop=console.stopping,
    )


def warm_up(
    console: ConsoleState, every: float = 10.0, previews: Callable[[], None] | None = None
) -> threading.Thread:
    """In a background thread: fold the stored email events, count the newest campaigns,
    warm the template previews (``previews``), load the current snapshot's columns for the
    live rule count (from the Parquet file the publish wrote), and every ``every`` seconds
    look for a newer published version and load it too, until the service stops. The pages
    never wait for it (docs/console.md)."""

    def run() -> None:
        try:
            console.tally.refresh()
            console.counts.warm(console.store)
        except Exception:  # the overview folds the events itself if this failed
            logger.warning("console warm-up failed", exc_info=True)
        try:
            if previews is not None:
                previews()
        except Exception:  # the first preview pays for it instead
            logger.warning("console warm-up of the templates failed", exc_info=True)
        while not console.stopping.is_set():
            try:
                version = console.store.snapshots.current_version()
                if version is not None:
                    console.columns.start(int(version))
            except Exception:
                logger.warning("console warm-up failed", exc_info=True)
            console.stopping.wait(every)

    thread = threading.Thread(target=run, name="console-warm-up", daemon=True)
    thread.start()
    return thread


def session_of(request: Request) -> Session | None:
    return console_of(request).signer.loads(request.cookies.get(COOKIE))


def user_of(request: Request, permission: str = "read") -> UserRecord:
    """The logged-in user, allowed ``permission``: NeedLogin without a session, Refused(403)
    when their role does not allow it."""
    session = session_of(request)
    user = None
    if session is not None and session.user:
        user = request.app.state.store.users.get(session.user)
    if user is None or user.disabled_at is not None:
        raise NeedLogin()
    if permission not in PERMISSIONS.get(user.role, frozenset()):
        raise Refused(403, f"your role ({user.role}) may not do this")
    return user


async def check_form(request: Request, permission: str) -> tuple[UserRecord, dict[str, str]]:
    """A form POST: the user may ``permission`` and the form carries the session's CSRF token
    (403 otherwise, nothing done). Returns the user and the form's fields."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not csrf_ok(session_of(request), fields.get("csrf")):
        raise Refused(403, "the form's security token is missing or stale: reload the page")
    return user_of(request, permission), fields


def page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    c = console_of(request)
    session = session_of(request) or Session()
    user = None
    if session.user:
        user = request.app.state.store.users.get(session.user)
    html = c.env.get_template(template).render(
        prefix=PREFIX, user=user, csrf=session.csrf, path=request.url.path, **context
    )
    response = HTMLResponse(html, status_code=code)
    secure_headers(response)
    if request.cookies.get(COOKIE) is None or session_of(request) is None:
        set_session(request, response, session)
    return response


def set_session(request: Request, response: Response, session: Session) -> None:
    c = console_of(request)
    response.set_cookie(
        COOKIE,
        c.signer.dumps(session),
        max_age=c.signer.max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=c.secure,
    )


def secure_headers(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"


def to_login(request: Request) -> RedirectResponse:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    secure_headers(response)
    return response
