"""Open pixel, click redirect, RFC 8058 one-click unsubscribe and the preference page.

Thin: verify the token (tracking.events), hand the event to the recorder, answer."""

from __future__ import annotations

import html
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sendwise.delivery.links import message_links, read_token
from sendwise.errors import TrackingError
from sendwise.store.claims import Claimed, ConsentChange, consent_by_message
from sendwise.tracking import events

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _meta(request: Request) -> dict[str, str | None]:
    client = request.client.host if request.client else None
    return {
        "user_agent": request.headers.get("user-agent"),
        "ip": client,
        "at": request.app.state.clock(),
    }


@router.get("/o/{token}.gif")
async def open_pixel(token: str, request: Request) -> Response:
    key, _ = read_token(request.app.state.key, token, "open")
    await request.app.state.recorder.record(
        events.engagement("open", key, **_meta(request)),  # type: ignore[arg-type]
        wait=request.app.state.wait_for_commit,
    )
    return Response(events.PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/c/{token}")
async def click(token: str, request: Request) -> Response:
    key, url = read_token(request.app.state.key, token, "click")
    if not url.lower().startswith(("http://", "https://")):
        raise TrackingError("not a web link")
    await request.app.state.recorder.record(
        events.engagement("click", key, url=url, **_meta(request)),  # type: ignore[arg-type]
        wait=request.app.state.wait_for_commit,
    )
    # the target is the URL signed into the token, never a parameter of the request
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots"
content="noindex"><title>{title}</title></head><body style="font-family:sans-serif;
max-width:32rem;margin:3rem auto;padding:0 1rem"><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=title, body=body), status, headers=NO_STORE)


def _confirm_form(action: str) -> str:
    return (
        "<p>Do you want to stop receiving these emails?</p>"
        f'<form method="post" action="{html.escape(action)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """A confirmation page: a GET (mail scanners fetch links) never unsubscribes."""
    read_token(request.app.state.key, token, "unsubscribe")
    return _page("Unsubscribe", _confirm_form(str(request.url.path)))


MAX_FORM = 16_384
"""Bytes of an unsubscribe POST body read at most (the one-click body is a few dozen)."""


def _multipart_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    """The text fields of a ``multipart/form-data`` body (stdlib parser, no files kept)."""
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    msg = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, list[str]] = {}
    if not msg.is_multipart():
        return fields
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.setdefault(name, []).append(payload.decode("utf-8", "replace").strip())
    return fields


def is_one_click(body: bytes, content_type: str | None) -> bool:
    """Whether a POST body says ``List-Unsubscribe=One-Click`` (RFC 8058), sent as
    ``application/x-www-form-urlencoded`` or as ``multipart/form-data``."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        form = _multipart_fields(body, content_type or "")
    else:
        form = parse_qs(body.decode("utf-8", "replace"))
    return [v.strip() for v in form.get("List-Unsubscribe", [])] == ["One-Click"]


@router.post("/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """RFC 8058 one-click: a POST with ``List-Unsubscribe=One-Click`` unsubscribes (a repeat
    changes nothing: one event, one suppression, one consent change)."""
    key, _ = read_token(request.app.state.key, token, "unsubscribe")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise TrackingError("unsubscribe body too large")
    if not is_one_click(body, request.headers.get("content-type")):
        raise TrackingError("expected the body List-Unsubscribe=One-Click")
    ua = request.headers.get("user-agent")
    at = request.app.state.clock()
    await request.app.state.recorder.record(events.unsubscribe(key, user_agent=ua, at=at))
    return _page("Unsubscribed", "<p>You will not receive these emails any more.</p>")


def _preference_form(action: str, topics: list[str], chosen: set[str], frequency: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="topic" value="{html.escape(t)}"'
        f"{' checked' if t in chosen else ''}> {html.escape(t)}</label><br>"
        for t in topics
    )
    options = "".join(
        f'<option value="{f}"{" selected" if f == frequency else ""}>{label}</option>'
        for f, label in (
            ("any", "as they come"),
            ("weekly", "at most one a week"),
            ("monthly", "at most one a month"),
        )
    )
    return (
        f'<form method="post" action="{html.escape(action)}"><fieldset><legend>Topics</legend>'
        f'{boxes}</fieldset><p><label>How often: <select name="frequency">{options}</select>'
        '</label></p><button type="submit">Save</button></form>'
    )


def _person(request: Request, token: str) -> tuple[str, str, str | None]:
    key, _ = read_token(request.app.state.key, token, "preferences")
    info = request.app.state.store.messages.find([key]).get(key)
    if info is None:
        raise TrackingError("this message is no longer known")
    return key, info.customer_id, info.email


@router.get("/preferences/{token}")
async def preferences(token: str, request: Request) -> HTMLResponse:
    """The preference center (every message's footer links here): topics, frequency, and
    unsubscribing from everything. Choices are consent-ledger rows the send policy reads."""
    key, customer_id, email = _person(request, token)
    store = request.app.state.store
    topics = list(request.app.state.settings.privacy.topics)
    probe = [Claimed(key, customer_id, email, "", None)]
    chosen = set()
    for topic in topics:
        changes = store.consents.changes("email", f"topic:{topic}")
        rows = changes[changes.customer_id == customer_id].itertuples(index=False)
        state = consent_by_message(probe, [ConsentChange(*r) for r in rows]).get(key)
        if state != "withdrawn":
            chosen.add(topic)
    frequency = store.privacy.frequency_of(customer_id)
    prefix = str(request.url.path).rsplit("/preferences/", 1)[0]
    action = prefix + message_links("", request.app.state.key.current, key)["unsubscribe"]
    body = _preference_form(str(request.url.path), topics, chosen, frequency)
    return _page("Your email preferences", body + "<hr>" + _confirm_form(action))


@router.post("/preferences/{token}")
async def save_preferences(token: str, request: Request) -> HTMLResponse:
    """Save the preference center's form: each topic granted or withdrawn, the frequency."""
    from sendwise.privacy.ledger import Proof, set_topics

    _key, customer_id, email = _person(request, token)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise TrackingError("preferences form too large")
    form = parse_qs(body.decode("utf-8", "replace"))
    topics = list(request.app.state.settings.privacy.topics)
    frequency = (form.get("frequency") or ["any"])[0]
    if frequency not in ("any", "weekly", "monthly"):
        raise TrackingError("unknown frequency")
    state = request.app.state
    proof = Proof(ip=request.client.host if request.client else None,
                  user_agent=request.headers.get("user-agent"))  # fmt: skip
    at = state.clock()
    set_topics(state.store, customer_id, email, [t for t in form.get("topic", []) if t in topics],
               topics, source="preference_center", proof=proof, at=at)  # fmt: skip
    state.store.privacy.set_frequency(customer_id, frequency, at)
    return _page("Preferences saved", "<p>Your choices are saved.</p>")
