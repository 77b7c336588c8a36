"""Open-time content: ``/live/{token}/rec/{n}.png`` redirects to the image of the customer's
n-th recommendation as computed now; ``/live/{token}/rec/{n}`` to that same product's page.

The first of the two to be fetched chooses the product and the store remembers it per
(message, slot), so that the image a reader saw and the page the click opens agree. Tokens are
verified with the key ring like the tracking links (a forged one: 403, nothing chosen).
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sendwise.api.profiles import serving_of
from sendwise.errors import NotFoundError
from sendwise.serving.live_links import check_slot, read_live_token
from sendwise.tracking import events

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _choose(request: Request, token: str, n: int) -> tuple[str, dict[str, Any]]:
    """(message_key, product data) of the slot: remembered, or chosen now and remembered."""
    message_key, customer_id = read_live_token(request.app.state.key, token)
    check_slot(n)
    serving = serving_of(request)
    snaps = serving.snaps
    kept = snaps.slot(message_key, n)
    if kept is None:
        try:
            recs = serving.recommendations(customer_id, n)["recommendations"]
        except NotFoundError:
            recs = []
        if len(recs) < n:
            version = snaps.current_version()
            popular = serving.info(version).meta.get("popular", []) if version else []
            recs = [{"product_id": p} for p in popular]
        if len(recs) < n:
            return message_key, {}
        product_id = snaps.choose_slot(
            message_key,
            n,
            customer_id=customer_id,
            product_id=str(recs[n - 1]["product_id"]),
            at=request.app.state.clock(),
        )
    else:
        product_id = str(kept["product_id"])
    version = snaps.current_version()
    data = snaps.products(version, [product_id]).get(product_id, {}) if version else {}
    return message_key, {"product_id": product_id, **data}


@router.get("/live/{token}/rec/{n}.png")
async def live_image(token: str, n: int, request: Request) -> Response:
    _, product = _choose(request, token, n)
    image = product.get("image_url")
    if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
        return RedirectResponse(image, status_code=302, headers=NO_STORE)
    return Response(BLANK_PNG, media_type="image/png", headers=NO_STORE)


@router.get("/live/{token}/rec/{n}")
async def live_click(token: str, n: int, request: Request) -> Response:
    message_key, product = _choose(request, token, n)
    shop = request.app.state.settings.content.shop.url
    url = product.get("url")
    target = (
        url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else shop
    )
    if not message_key.startswith("render-"):
        ua = request.headers.get("user-agent")
        client = request.client.host if request.client else None
        at = request.app.state.clock()
        event = events.engagement("click", message_key, user_agent=ua, ip=client, url=target, at=at)
        await request.app.state.recorder.record(event, wait=request.app.state.wait_for_commit)
    return RedirectResponse(target, status_code=302, headers=NO_STORE)
