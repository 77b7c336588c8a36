"""Live slots in templates: the helpers print placeholders in the sandbox, sending signs them
into service URLs that the service verifies (and nothing else), for any message text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendwise.content.errors import TemplateError
from sendwise.content.live import PLACEHOLDER
from sendwise.content.sandbox import make_environment
from sendwise.delivery.links import sign
from sendwise.errors import SignatureError, TrackingError
from sendwise.keys import KeyRing
from sendwise.serving.live_links import check_slot, read_live_token, resolve

KEY = b"k" * 32
RING = KeyRing(KEY)
SLOT = '<a href="{{ live_rec_link(2) }}"><img src="{{ live_rec_image(2) }}" alt=""></a>'


def test_a_template_places_a_live_slot_that_sending_signs() -> None:
    html = make_environment(html=True).from_string(SLOT).render()
    assert html == f'<a href="{PLACEHOLDER}2"><img src="{PLACEHOLDER}2.png" alt=""></a>'
    sent = resolve(html, "https://mail.example/e/", KEY, "m0001", "c 42&x")
    assert PLACEHOLDER not in sent
    root = "https://mail.example/e/live/"
    href = sent.split('href="', 1)[1].split('"', 1)[0]
    src = sent.split('src="', 1)[1].split('"', 1)[0]
    assert href.startswith(root) and href.endswith("/rec/2")
    assert src == href + ".png"
    token = href.removeprefix(root).removesuffix("/rec/2")
    assert read_live_token(RING, token) == ("m0001", "c 42&x")


def test_bad_slot_numbers_are_refused_in_templates_and_links() -> None:
    env = make_environment(html=True)
    for bad in ("0", "51", "'1'", "true"):
        with pytest.raises(TemplateError):
            env.from_string("{{ live_rec_link(" + bad + ") }}").render()
    with pytest.raises(TrackingError):
        check_slot(0)


def test_other_tokens_do_not_open_live_slots() -> None:
    with pytest.raises(SignatureError):
        read_live_token(RING, sign(b"x" * 32, "live:m1:c1"))
    with pytest.raises(TrackingError):  # a genuine click token is not a live one
        read_live_token(RING, sign(KEY, "click:m1:https://shop.example"))
    with pytest.raises(TrackingError):
        read_live_token(RING, sign(KEY, "live:m1:"))


@given(st.text(max_size=200), st.text(min_size=1, max_size=40), st.integers(1, 50))
def test_resolve_touches_only_placeholders(text: str, customer: str, n: int) -> None:
    body = text.replace(PLACEHOLDER, "") + f"{PLACEHOLDER}{n}.png" + text.replace(PLACEHOLDER, "")
    out = resolve(body, "https://s.example", KEY, "m9", customer)
    clean = text.replace(PLACEHOLDER, "")
    assert out.startswith(clean) and out.endswith(clean)
    assert PLACEHOLDER not in out
    assert resolve(clean, "https://s.example", KEY, "m9", customer) == clean


def test_a_sent_message_carries_signed_live_links_left_out_of_click_tracking() -> None:
    from sendwise.content.message import RenderedEmail
    from sendwise.delivery.mime import compose

    html = (
        make_environment(html=True)
        .from_string(
            '<html><body><a href="https://shop.example/p/1">P</a>' + SLOT + "</body></html>"
        )
        .render()
    )
    message = compose(
        RenderedEmail(subject="s", preheader="", html=html, text="t"),
        key="m0042",
        to="c@example.com",
        sender="Shop <s@shop.example>",
        links={"unsubscribe": "https://mail.example/e/unsubscribe/x"},
        tracking=("https://mail.example/e", KEY),
        customer_id="C7",
    )
    out = message.html
    assert PLACEHOLDER not in out
    live = out.split('<a href="https://mail.example/e/live/', 1)[1].split('"', 1)[0]
    token, rest = live.split("/", 1)
    assert rest == "rec/2" and read_live_token(RING, token) == ("m0042", "C7")
    assert 'src="https://mail.example/e/live/' + token + '/rec/2.png"' in out
    assert "https://mail.example/e/c/" in out  # the shop link is click-tracked as before
    assert 'href="https://shop.example/p/1"' not in out
