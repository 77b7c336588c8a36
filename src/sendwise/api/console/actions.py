"""The console's actions (POST): log in and out, create, send, compute results.

Each checks the form's CSRF token and the user's role before anything else, and writes a line
to the audit log, refused attempts included."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from sendwise.api.console.state import (
    PREFIX,
    Refused,
    check_form,
    console_of,
    page,
    secure_headers,
    session_of,
    set_session,
)
from sendwise.console import campaign_views, jobs, views
from sendwise.console.sessions import Session, csrf_ok
from sendwise.console.users import audit, authenticate
from sendwise.errors import AuthenticationError, CampaignError, NotFoundError

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _redirect(to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    secure_headers(response)
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    return page(request, "login.html", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not csrf_ok(session_of(request), fields.get("csrf")):
        raise Refused(403, "the form's security token is missing or stale: reload the page")
    store = request.app.state.store
    name = fields.get("name", "")[:64]
    try:
        user = await run_in_threadpool(authenticate, store, name, fields.get("password", ""))
    except AuthenticationError as exc:
        await run_in_threadpool(functools.partial(audit, store, name or "?", "login",
                                                  outcome="refused"))  # fmt: skip
        return page(request, "login.html", code=401, error=str(exc))
    await run_in_threadpool(audit, store, user.name, "login")
    response = _redirect(f"{PREFIX}/overview")
    set_session(request, response, Session(user=user.name))  # a new CSRF token at each log-in
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    user, _ = await check_form(request, "read")
    await run_in_threadpool(audit, request.app.state.store, user.name, "logout")
    response = _redirect(f"{PREFIX}/login")
    set_session(request, response, Session())
    return response


@router.post("/campaigns")
async def create_campaign(request: Request) -> Response:
    user, form = await check_form(request, "write")
    st, c = request.app.state, console_of(request)
    try:
        defn = campaign_views.definition_from_form(form)
        cid = await run_in_threadpool(campaign_views.create, st.store, c.columns, defn)
    except (CampaignError, NotFoundError) as exc:
        refusal = functools.partial(
            audit, st.store, user.name, "campaign.create", form.get("name", ""),
            outcome="refused", error=str(exc),
        )  # fmt: skip
        await run_in_threadpool(refusal)
        return page(request, "campaign_new.html", code=400, form=form, error=str(exc),
                    segments=views.segment_names(st.store),
                    templates=views.template_names(st.settings),
                    size=campaign_views.size_needed("0.03", "0.2"))  # fmt: skip
    await run_in_threadpool(functools.partial(audit, st.store, user.name, "campaign.create", cid,
                                              definition=defn.model_dump(mode="json")))  # fmt: skip
    return _redirect(f"{PREFIX}/campaigns/{cid}")


def _job(request: Request, kind: str, name: str, user: str) -> str:
    from sendwise.campaigns.service import load_campaign

    st, c = request.app.state, console_of(request)
    try:
        cid, _status, _defn = load_campaign(st.store, name[:200])
    except NotFoundError as exc:
        raise Refused(404, str(exc)) from None
    work = jobs.send_job if kind == "campaign.send" else jobs.results_job
    c.jobs.submit(kind, cid, user, functools.partial(work, st.settings, st.store, cid))
    audit(st.store, user, kind, cid)
    return cid


@router.post("/campaigns/{name}/send")
async def send_campaign(request: Request, name: str) -> Response:
    user, _ = await check_form(request, "write")
    cid = await run_in_threadpool(_job, request, "campaign.send", name, user.name)
    return _redirect(f"{PREFIX}/campaigns/{cid}")


@router.post("/campaigns/{name}/results")
async def compute_results(request: Request, name: str) -> Response:
    user, _ = await check_form(request, "write")
    cid = await run_in_threadpool(_job, request, "campaign.results", name, user.name)
    return _redirect(f"{PREFIX}/campaigns/{cid}")


@router.post("/journeys/{name}/{action}")
async def pause_or_resume(request: Request, name: str, action: str) -> Response:
    from sendwise.api.profiles import serving_of
    from sendwise.console import journey_views
    from sendwise.errors import JourneyError

    user, _ = await check_form(request, "write")
    if action not in ("pause", "resume"):
        raise Refused(404, f"no journey action {action[:20]!r}")
    st = request.app.state
    try:
        await run_in_threadpool(
            journey_views.set_status, st.store, st.settings, serving_of(request), name[:64],
            action == "pause",
        )  # fmt: skip
    except JourneyError as exc:
        raise Refused(404, str(exc)) from None
    await run_in_threadpool(audit, st.store, user.name, f"journey.{action}", name[:64])
    return _redirect(f"{PREFIX}/journeys/{name[:64]}")
