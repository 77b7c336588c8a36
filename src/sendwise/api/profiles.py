"""The read API (read keys): live profiles, real-time recommendations, rendering and segment
members. Thin: the work is :class:`sendwise.serving.service.Serving`'s."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sendwise.access import ApiKeyInfo, Scope
from sendwise.api.auth import require
from sendwise.serving.service import Serving

router = APIRouter(prefix="/v1", tags=["read"])
JSON = "application/json"
Reader = Annotated[ApiKeyInfo, Depends(require(Scope.READ))]
TEXT = r"^[^\x00]*$"
"""Any text but NUL, which PostgreSQL refuses in a string (a 503 otherwise)."""
CustomerId = Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT)]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown customer, segment or template, or nothing published yet"},
}


def fast_json(body: Any) -> Response:
    """The answer as compact JSON, skipping FastAPI's encoder (the values are JSON already:
    a third of the time of a profile read)."""
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), media_type=JSON)


def serving_of(request: Request) -> Serving:
    """The app's Serving (made on first use: it only needs the store the lifespan opened)."""
    state = request.app.state
    serving = getattr(state, "serving", None)
    if serving is None:
        serving = state.serving = Serving(state.store, state.settings, clock=state.clock)
    return serving


@router.get("/profiles/{customer_id}", responses=ERRORS)
async def get_profile(customer_id: CustomerId, request: Request, key: Reader) -> Any:
    """The customer's profile, scores, segments and reasons from the published snapshot, with
    the live fields of their events since (scored live when first seen after it)."""
    return Response(serving_of(request).profile_json(customer_id), media_type=JSON)


@router.get("/profiles/{customer_id}/recommendations", responses=ERRORS)
async def get_recommendations(
    customer_id: CustomerId,
    request: Request,
    key: Reader,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Any:
    """The top ``k`` products, re-ranked by the customer's recent views and cart."""
    return fast_json(serving_of(request).recommendations(customer_id, k))


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(
        min_length=1, max_length=200, pattern=TEXT, description="Path inside templates/."
    )
    customer_id: str = Field(min_length=1, max_length=200, pattern=TEXT)


class RenderResponse(BaseModel):
    customer_id: str
    template: str
    subject: str
    preheader: str
    html: str
    text: str
    slots: dict[str, str]


@router.post(
    "/render",
    response_model=RenderResponse,
    responses={**ERRORS, 400: {"description": "A template that cannot be rendered"}},
)
async def render(body: RenderRequest, request: Request, key: Reader) -> Any:
    """A template rendered for one customer from their live profile."""
    from sendwise.content.render import Renderer
    from sendwise.serving.render import render_for

    state = request.app.state
    renderer = getattr(state, "renderer", None)
    if renderer is None:
        renderer = state.renderer = Renderer(state.settings)
    base = state.settings.delivery.base_url
    # a template that cannot render is a TemplateError (an InputError): 400 with its message
    return await run_in_threadpool(
        render_for,
        serving_of(request),
        renderer,
        body.template,
        body.customer_id,
        base_url=base,
        key=state.key.current,
    )


@router.get("/segments/{name}/members", responses=ERRORS)
async def segment_members(
    name: Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT)],
    request: Request,
    key: Reader,
    cursor: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Customer ids of a segment in id order, ``limit`` a page; pass ``next_cursor`` back for
    the next page (null on the last)."""
    return fast_json(serving_of(request).segment_members(name, cursor=cursor, limit=limit))
