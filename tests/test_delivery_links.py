"""Signed links: the fast HMAC is byte for byte the standard library's, and tracked HTML keeps
every link verifiable."""

from __future__ import annotations

import base64
import hmac
import re

from hypothesis import given
from hypothesis import strategies as st

from sendwise.delivery.links import _b64, _mac, sign, verify
from sendwise.delivery.tracking_links import track_html


@given(key=st.binary(max_size=200), raw=st.binary(max_size=500))
def test_mac_is_hmac_sha256(key: bytes, raw: bytes) -> None:
    assert _mac(key, raw) == hmac.digest(key, raw, "sha256")


@given(raw=st.binary(max_size=300))
def test_b64_is_unpadded_base64url(raw: bytes) -> None:
    assert _b64(raw) == base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@given(key=st.binary(min_size=1, max_size=100), payload=st.text(max_size=200))
def test_sign_round_trips(key: bytes, payload: str) -> None:
    assert verify(key, sign(key, payload)) == payload


def test_tracked_links_carry_the_unescaped_url() -> None:
    body = (
        '<body><a href="https://shop.example/p?a=1&amp;b=2">x</a>'
        "<A HREF=' http://other.example/'>y</A>"
        '<a href="https://t.example/unsubscribe/tok">u</a><a href="mailto:a@b">m</a></body>'
    )
    out = track_html(body, "https://t.example/", b"k", "m1")
    clicks = re.findall(r'/c/([A-Za-z0-9_.-]+)["\']', out)
    assert [verify(b"k", c) for c in clicks] == [
        "click:m1:https://shop.example/p?a=1&b=2",
        "click:m1:http://other.example/",
    ]
    assert 'href="https://t.example/unsubscribe/tok"' in out and 'href="mailto:a@b"' in out
    assert out.index("/o/") < out.index("</body>")
