"""/v1/privacy (admin key): export and erase a person, objection to profiling; /v1/privacy/
signup (write key) starts a double opt-in; /confirm/{token} is the signed link of its email.

Thin: the library does the work (sendwise.privacy). Export and erasure open the warehouse for
the request (they are rare admin calls; a build that holds the DuckDB file makes them wait)."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from sendwise.api.auth import AdminKey, WriteKey
from sendwise.privacy.ledger import Proof, confirm, object_to_profiling, signup_async

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])
pages = APIRouter(tags=["privacy"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportBody(_Body):
    customer: str = Field(min_length=1, max_length=320)


class EraseBody(_Body):
    customers: list[str] = Field(min_length=1, max_length=100_000)


class SignupBody(_Body):
    customer_id: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)


class ObjectBody(_Body):
    customer_id: str = Field(min_length=1, max_length=200)
    objects: bool = True


def _proof(request: Request) -> Proof:
    return Proof(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def _with_warehouse(request: Request, work: Any) -> Any:
    from sendwise.warehouse.connection import Warehouse

    settings = request.app.state.settings
    with Warehouse.from_settings(settings) as wh:
        return work(settings, wh, request.app.state.store)


@router.post("/export")
async def export(body: ExportBody, request: Request, key: AdminKey) -> dict[str, Any]:
    """Everything held about one person (a customer id or an address), with a summary."""
    from sendwise.privacy.export import export as run_export

    return await asyncio.to_thread(
        _with_warehouse,
        request,
        lambda s, wh, st: run_export(s, body.customer, wh=wh, store=st, requested_by=key.name),
    )


@router.post("/erase")
async def erase(body: EraseBody, request: Request, key: AdminKey) -> dict[str, Any]:
    """Erase people from every place; answers the counts (the audit record's detail)."""
    from sendwise.privacy.service import erase as run_erase

    report = await asyncio.to_thread(
        _with_warehouse,
        request,
        lambda s, wh, st: run_erase(s, body.customers, wh=wh, store=st, requested_by=key.name),
    )
    return {"request_id": report.request_id, "people": report.people, **report.detail()}


@router.post("/signup")
async def signup(body: SignupBody, request: Request, key: WriteKey) -> dict[str, str]:
    """Marketing consent from a signup form: ``pending`` and a confirmation email (double
    opt-in), or ``granted`` when privacy.double_opt_in is off."""
    state = request.app.state
    status = await signup_async(
        state.settings,
        state.store,
        state.key,
        body.customer_id,
        body.email,
        source=f"api:{key.name}",
        proof=_proof(request),
    )
    return {"status": status}


@router.post("/object")
async def object_(body: ObjectBody, request: Request, key: AdminKey) -> dict[str, bool]:
    """Record an objection to profiling (or withdraw it)."""
    changed = object_to_profiling(
        request.app.state.store,
        body.customer_id,
        objects=body.objects,
        source=f"api:{key.name}",
        proof=_proof(request),
    )
    return {"changed": changed}


@pages.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm_page(token: str, request: Request) -> HTMLResponse:
    """The link of the confirmation email: a forged or altered one is refused (403)."""
    state = request.app.state
    confirm(state.store, state.key, token, proof=_proof(request), at=state.clock())
    name = html.escape(state.settings.content.shop.name)
    return HTMLResponse(
        f"<!doctype html><title>Confirmed</title><h1>Thank you</h1>"
        f"<p>You will receive emails from {name}.</p>",
        headers={"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"},
    )
