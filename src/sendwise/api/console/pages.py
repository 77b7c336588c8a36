"""The console's pages (GET): each reads through :mod:`sendwise.console` and renders a template.

Every page needs a logged-in user (the read permission); the library work runs in the thread
pool, so a slow page never blocks the service's event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from sendwise.api.console.state import (
    PREFIX,
    console_of,
    page,
    renderer_of,
    secure_headers,
    user_of,
)
from sendwise.console import campaign_views, model_views, views
from sendwise.errors import NotFoundError, SendwiseError

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Text = Annotated[str, Query(max_length=4000)]


def _serving(request: Request) -> Any:
    from sendwise.api.profiles import serving_of

    return serving_of(request)


def _renderer(request: Request) -> Any:
    return renderer_of(request.app.state)


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse(f"{PREFIX}/overview", status_code=303)


@router.get("/overview")
async def overview(request: Request) -> Response:
    user_of(request)
    c, st = console_of(request), request.app.state
    data = await run_in_threadpool(views.overview, st.store, st.settings, c.tally)
    return page(request, "overview.html", **data)


@router.get("/segments")
async def segments(request: Request, measure: str = "customers") -> Response:
    user_of(request)
    measure = "revenue" if measure == "revenue" else "customers"
    c, st = console_of(request), request.app.state
    data = await run_in_threadpool(views.segments, st.store, c.columns, measure)
    return page(request, "segments.html", **data)


@router.get("/segments/count")
async def rule_count(request: Request, rule: Text = "") -> Response:
    user_of(request)
    c, st = console_of(request), request.app.state
    body = await run_in_threadpool(views.rule_count, st.store, c.columns, rule)
    response = JSONResponse(body)
    secure_headers(response)
    return response


@router.get("/customers")
async def customers(request: Request, q: Annotated[str, Query(max_length=320)] = "") -> Response:
    user_of(request)
    c, st = console_of(request), request.app.state
    found = await run_in_threadpool(views.find_customers, st.store, c.columns, q)
    if len(found) == 1 and "@" in q:
        return RedirectResponse(f"{PREFIX}/customers/{found[0]}", status_code=303)
    if len(found) == 1:
        return await customer(request, found[0])
    return page(request, "customers.html", q=q, found=found)


@router.get("/customers/{customer_id}")
async def customer(request: Request, customer_id: str) -> Response:
    user_of(request)
    st = request.app.state
    try:
        data = await run_in_threadpool(
            views.customer, st.store, _serving(request), customer_id[:200]
        )
    except NotFoundError as exc:
        return page(request, "customers.html", code=404, q=customer_id, found=[], error=str(exc))
    return page(request, "customer.html", **data)


@router.get("/models")
async def models(request: Request) -> Response:
    user_of(request)
    cards = await run_in_threadpool(model_views.model_cards, request.app.state.settings)
    return page(request, "models.html", cards=cards)


@router.get("/models/{name}/{version}/{plot}")
async def model_plot(request: Request, name: str, version: str, plot: str) -> Response:
    user_of(request)
    path = model_views.plot_file(request.app.state.settings, name, version, plot)
    if path is None:
        return page(request, "error.html", code=404, message="no such plot")
    return FileResponse(path, media_type="image/png")


@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    user_of(request)
    from sendwise.store.console import campaign_list

    rows = await run_in_threadpool(campaign_list, request.app.state.store)
    return page(request, "campaigns.html", campaigns=rows)


@router.get("/campaigns/new")
async def new_campaign(request: Request) -> Response:
    user_of(request, "write")
    st = request.app.state
    names = await run_in_threadpool(views.segment_names, st.store)
    return page(request, "campaign_new.html", form={}, error=None,
                segments=names, templates=views.template_names(st.settings),
                size=campaign_views.size_needed("0.03", "0.2"))  # fmt: skip


@router.get("/samplesize")
async def samplesize(
    request: Request, baseline: Text = "0.03", lift: Text = "0.2", power: Text = "0.8"
) -> Response:
    user_of(request)
    response = JSONResponse(campaign_views.size_needed(baseline, lift, power))
    secure_headers(response)
    return response


@router.get("/campaigns/{name}")
async def campaign(request: Request, name: str) -> Response:
    user_of(request)
    from sendwise.campaigns.service import load_campaign

    st, c = request.app.state, console_of(request)
    try:
        cid, status, defn = load_campaign(st.store, name[:200])
    except NotFoundError as exc:
        return page(request, "error.html", code=404, message=str(exc))
    shown: list[dict[str, Any]] = []
    if status == "created":
        shown = await run_in_threadpool(
            campaign_views.previews, _serving(request), _renderer(request), c.columns, st.store,
            defn, key=st.key.current, base_url=st.settings.delivery.base_url,
        )  # fmt: skip
    job = c.jobs.latest(cid)
    stamp = (status, job.job_id if job else None, job.status if job else None)
    res = await run_in_threadpool(
        campaign_views.results, st.store, st.settings, cid, defn, c.counts, stamp
    )
    return page(request, "campaign.html", cid=cid, status=status, defn=defn, previews=shown,
                job=job, **res)  # fmt: skip


@router.get("/templates")
async def templates(
    request: Request,
    name: Annotated[str, Query(max_length=200)] = "",
    customer: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    user_of(request)
    from sendwise.serving.render import render_for

    st = request.app.state
    names = views.template_names(st.settings)
    shown = problems = error = None
    if name:
        renderer = _renderer(request)
        try:
            problems = await run_in_threadpool(console_of(request).lints.get, renderer, name)
            if customer:
                shown = await run_in_threadpool(
                    render_for, _serving(request), renderer, name, customer,
                    base_url=st.settings.delivery.base_url, key=st.key.current,
                )  # fmt: skip
        except (SendwiseError, LookupError, OSError) as exc:
            error = str(exc)
    return page(request, "templates.html", names=names, name=name, customer=customer,
                shown=shown, problems=problems, error=error)  # fmt: skip


@router.get("/journeys")
async def journeys(request: Request) -> Response:
    user_of(request)
    from sendwise.console import journey_views

    st = request.app.state
    rows = await run_in_threadpool(journey_views.journeys, st.store, st.settings, _serving(request))
    return page(request, "journeys.html", rows=rows)


@router.get("/journeys/{name}")
async def journey(request: Request, name: str) -> Response:
    user_of(request)
    from sendwise.console import journey_views

    st = request.app.state
    found = await run_in_threadpool(
        journey_views.journey, st.store, st.settings, _serving(request), name[:64]
    )
    if found is None:
        return page(request, "error.html", code=404, message=f"no journey named {name[:64]!r}")
    return page(request, "journey.html", **found)


@router.get("/data")
async def data(request: Request) -> Response:
    user_of(request)
    body = await run_in_threadpool(views.data_page, request.app.state.store)
    return page(request, "data.html", **body)


@router.get("/audit")
async def audit_log(request: Request) -> Response:
    user_of(request, "admin")
    rows = await run_in_threadpool(request.app.state.store.audit.recent, 200)
    return page(request, "audit.html", rows=rows)
