"""Property: for any profile, with any values missing, every starter renders a complete email:
a subject, both parts, the unsubscribe link, no "None", no empty link, and valid MIME."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.content.data import product_token, split_row
from sendwise.content.render import Renderer
from sendwise.content.starters import NAMES
from sendwise.delivery.mime import build_mime, compose

# text that is not itself "None", so that any "None" in the output is a missing value printed
TEXT = st.one_of(
    st.none(), st.just(""), st.text(min_size=1, max_size=30).filter(lambda s: "None" not in s)
)
NUMBER = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False, width=32))
PRODUCT = st.fixed_dictionaries(
    {
        "product_id": st.text(alphabet="ABC123", min_size=1, max_size=8),
        "name": TEXT,
        "price": NUMBER,
        "url": st.one_of(st.none(), st.just(""), st.just("https://shop.example.com/p/1")),
        "image_url": st.one_of(st.none(), st.just(""), st.just("https://cdn.example.com/1.jpg")),
        "category": TEXT,
    }
)
HREF = re.compile(r'\bhref="([^"]*)"')
EMPTY_BLOCK = re.compile(r"<(p|h1|h2|td|a|strong)\b[^>]*>\s*</\1>")


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    from sendwise.config import init_project, load_settings

    folder = tmp_path_factory.mktemp("props") / "shop"
    init_project(folder)
    return Renderer(load_settings(folder))


def _variants(renderer: Renderer, name: str) -> dict[str, list[str]]:
    spec = renderer.template(name).spec
    return {s: [v.name for v in slot.variants] for s, slot in spec.slots.items()}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    first_name=TEXT,
    favourite=TEXT,
    p_purchase=NUMBER,
    products=st.lists(PRODUCT, max_size=8),
    segments=st.lists(TEXT, max_size=3),
)
def test_any_profile_renders_a_complete_email(
    renderer: Renderer, data, first_name, favourite, p_purchase, products, segments
) -> None:
    name = data.draw(st.sampled_from(NAMES))
    slots = {s: data.draw(st.sampled_from(v)) for s, v in _variants(renderer, name).items()}
    row = {
        "customer_id": "C1",
        "first_name": first_name,
        "favourite_category": favourite,
        "frequency": None,
        "p_purchase": p_purchase,
        "segments": "; ".join(s for s in segments if s),
    }
    tokens = split_row(row, {})
    tokens["recommendations"] = [product_token(p, renderer.settings) for p in products]
    tokens["slots"] = slots
    links = renderer.default_links("C1")
    message = renderer.render_context(name, tokens, links)
    assert message.subject.strip() and message.text.strip() and message.html.strip()
    for part in (message.subject, message.preheader, message.text, message.html):
        assert "None" not in part and "nan" not in part.lower().split()
    assert all(h.startswith("https://") for h in HREF.findall(message.html))
    assert not EMPTY_BLOCK.search(message.html), EMPTY_BLOCK.search(message.html).group(0)
    assert f'href="{links["unsubscribe"]}"' in message.html
    parsed = email.message_from_bytes(
        build_mime(
            compose(message, key="k1", to="c1@example.com", sender="S <s@x.com>", links=links)
        ),
        policy=policy.default,
    )
    kinds = [p.get_content_type() for p in parsed.iter_parts()]
    assert kinds == ["text/plain", "text/html"] and not parsed.defects
    assert parsed["Subject"] == message.subject
