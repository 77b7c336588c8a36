"""One MIME builder for previews and sends (issue 13): a campaign message previewed with
``sendwise render --campaign --customer --out x.eml`` is byte for byte what a real SMTP server
on loopback receives when the campaign is sent, apart from the Date header; any subject and body
survive the builder (hypothesis); an .eml is addressed to the customer's own address, and a
segment member without one gets no file (never a made-up address)."""

from __future__ import annotations

import email
import hashlib
import os
import re
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_shop import build_shop
from mailservers import start_smtp
from sendwise.campaigns import create_campaign, parse_definition, send_campaign
from sendwise.campaigns.message_preview import campaign_message
from sendwise.campaigns.rendering import make_renderer
from sendwise.campaigns.service import plan_campaign
from sendwise.config import load_settings
from sendwise.content.batch import file_name, segment_members
from sendwise.content.message import RenderedEmail
from sendwise.content.render import Renderer
from sendwise.delivery import make_messenger
from sendwise.delivery.mime import MAX_LINE, build_mime, clean_header, compose
from sendwise.delivery.previews import render_segment
from sendwise.store import open_store
from sendwise.warehouse.connection import Warehouse

CAMPAIGN = {
    "name": "Same bytes",
    "audience": {"rule": "email is not null"},
    "quiet_hours": False,
    "variants": [
        {"name": "A", "template": "newsletter.html", "share": 50},
        {"name": "B", "template": "win-back.html", "share": 50},
    ],
}
DATE = re.compile(rb"^Date: [^\r\n]*\r\n", re.MULTILINE)
SEGMENT = "Inactive"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A project whose first three members of SEGMENT have no usable address (two none, one
    blank); (project folder, those customer ids)."""
    folder = tmp_path_factory.mktemp("mime") / "shop"
    settings, wh, _ = build_shop(folder, customers=160, seed=5, days=150)
    with wh:
        members = segment_members(Renderer(settings, wh), SEGMENT)
        no_address = members[:3]
        p = wh.table("profile").to_pandas()
        p["email"] = p["email"].astype(object)
        p.loc[p.customer_id.isin(no_address[:2]), "email"] = None
        p.loc[p.customer_id == no_address[2], "email"] = "  "
        wh.con.create_table("profile", p, overwrite=True)
    return folder, no_address


def _cli(*args: str, project: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sendwise.cli", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=600,
    )


def _without_date(raw: bytes) -> bytes:
    assert len(DATE.findall(raw)) == 1, raw[:600]
    return DATE.sub(b"", raw, count=1)


def test_a_previewed_campaign_message_is_what_the_smtp_server_receives(
    shop: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = shop
    server = start_smtp()
    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    smtp = {"host": server.host, "port": server.port, "starttls": False, "connections": 2}
    settings = load_settings(
        folder, store={"url": store_url}, delivery={"messenger": "smtp", "smtp": smtp}
    )
    defn = parse_definition(CAMPAIGN)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        create_campaign(store, wh, settings, defn, renderer)
        plan_campaign(store, wh, settings, defn.name)
        plan = store.messages.plan_frame(defn.campaign_id)
    pending = plan[plan.status == "pending"]
    picked = [group.customer_id.iloc[0] for _, group in pending.groupby("variant")]
    assert len(picked) == 2  # one customer of each variant (two templates)

    # the CLI writes each preview (in its own process, as a user runs it)
    previews = {}
    for cid in picked:
        out = tmp_path / f"{cid}.eml"
        env = {"SENDWISE_STORE__URL": store_url}
        done = _cli(
            "render", "--campaign", defn.name, "--customer", cid, "--out", str(out),
            project=folder, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        previews[cid] = out.read_bytes()

    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        # the library call the CLI makes gives the same bytes in this process too
        again = campaign_message(store, wh, settings, defn.name, picked[0], renderer)
        report = send_campaign(store, wh, settings, defn.name, renderer, make_messenger(settings))
    server.stop()
    assert _without_date(again.data) == _without_date(previews[picked[0]])

    email_of = dict(zip(plan.customer_id, plan.email, strict=True))
    received = {rcpts[0]: raw for _, rcpts, raw in server.recorder.messages}
    assert report.sent == len(received) == len(pending)
    for cid in picked:
        sent = received[email_of[cid]]
        assert _without_date(sent) == _without_date(previews[cid])
        parsed = email.message_from_bytes(sent, policy=policy.default)
        assert parsed["To"] == email_of[cid]
        assert parsed["X-Sendwise-Campaign"] == defn.campaign_id
        assert "/o/" in parsed.get_body(("html",)).get_content()  # the tracking pixel
        assert str(parsed["List-Unsubscribe"]).startswith(f"<{settings.delivery.base_url}/")


def test_a_campaign_preview_of_a_customer_without_a_message_is_a_one_line_error(
    shop: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, no_address = shop
    env = {"SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}"}
    path = tmp_path / "c.toml"
    path.write_text(
        'name = "One line"\nquiet_hours = false\ntemplate = "welcome.html"\n'
        '[audience]\nrule = "email is not null"\n',
        encoding="utf-8",
    )
    assert _cli("campaign", "create", str(path), project=folder, env=env).returncode == 0
    out = tmp_path / "x.eml"
    for args in (
        ("--campaign", "One line", "--customer", no_address[0], "--out", str(out)),
        ("--campaign", "One line", "--customer", "NOBODY", "--out", str(out)),
        ("--campaign", "One line", "--customer", no_address[0]),
    ):
        done = _cli("render", *args, project=folder, env=env)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


# ---- the builder: any subject and body survive -------------------------------------------

BOUNDARY = "--=_sw_" + hashlib.blake2b(b"k1", digest_size=12).hexdigest()  # of key "k1"
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\r\n\r\n", " \n", "\t\r\n"])
PIECES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="=.- \tFrom>", max_size=20),
    st.text(alphabet="aé☕€ \u00a0", min_size=900, max_size=2500),  # over 998 bytes a line
    LINE_ENDS,
    st.sampled_from([f"\n{BOUNDARY}\n", f"\r\n{BOUNDARY}--\r\n", "\n.\n", "\n--\n"]),
)
BODY = st.lists(PIECES, max_size=12).map("".join)


def _lines(text: str) -> str:
    """``text`` with its line ends as LF (the parser gives back CRLF, as the wire has them)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=300, deadline=None)
@given(subject=st.one_of(st.text(max_size=200), BODY), text=BODY, html=BODY)
def test_any_subject_and_body_parse_back_the_same(subject: str, text: str, html: str) -> None:
    message = RenderedEmail(subject=subject, preheader="", html=html, text=text)
    links = {"unsubscribe": "https://shop.example/email/unsubscribe/t0k"}
    raw = build_mime(
        compose(
            message, key="k1", to="zoë@example.com", sender="Shöp <s@shop.example>", links=links
        )
    )
    assert max(map(len, raw.split(b"\r\n"))) <= MAX_LINE
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert not parsed.defects
    assert str(parsed["Subject"]) == clean_header(subject)
    assert _lines(parsed.get_body(("plain",)).get_content()) == _lines(text)
    assert _lines(parsed.get_body(("html",)).get_content()) == _lines(html)
    assert parsed["List-Unsubscribe"] == f"<{links['unsubscribe']}>"


# ---- files: addressed to the customer, never to a made-up address ------------------------


def test_render_customer_eml_is_addressed_to_that_customer(
    shop: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, no_address = shop
    with Warehouse.from_settings(load_settings(folder)) as wh:
        p = wh.table("profile").select("customer_id", "email").to_pandas()
    cid, address = next((c, e) for c, e in zip(p.customer_id, p.email, strict=True) if e)
    out = tmp_path / "one.eml"
    done = _cli("render", "welcome.html", "--customer", cid, "--out", str(out), project=folder)
    assert done.returncode == 0, done.stderr
    parsed = email.message_from_bytes(out.read_bytes(), policy=policy.default)
    assert parsed["To"] == address
    missing = _cli(
        "render", "welcome.html", "--customer", no_address[0], "--out", str(tmp_path / "no.eml"),
        project=folder,
    )  # fmt: skip
    assert missing.returncode == 1 and "has no email address" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no.eml").exists()


def test_segment_members_without_an_address_get_no_eml(
    shop: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, no_address = shop
    out = tmp_path / "segment"
    done = _cli("render", "win-back.html", "--segment", SEGMENT, "--out", str(out), project=folder)
    assert done.returncode == 0, done.stderr
    assert "skipped 3 member(s) without an email address" in done.stdout
    settings = load_settings(folder)
    with Warehouse.from_settings(settings) as wh:
        renderer = Renderer(settings, wh)
        members = segment_members(renderer, SEGMENT)
        profile = wh.table("profile").select("customer_id", "email").to_pandas()
        html = render_segment(renderer, "win-back.html", SEGMENT, tmp_path / "html", "html")
    address = dict(zip(profile.customer_id, profile.email, strict=True))
    files = {f.stem: f for f in out.glob("*.eml")}
    assert set(files) == {file_name(c) for c in members if c not in no_address}
    for cid in members:
        if cid in no_address:
            continue
        parsed = email.message_from_bytes(files[file_name(cid)].read_bytes(), policy=policy.default)
        assert parsed["To"] == address[cid]
    assert not any(b"invalid" in f.read_bytes().split(b"\r\n\r\n")[0] for f in files.values())
    assert html.written == len(members) and not html.no_address  # .html needs no address


def test_preview_with_a_bad_number_is_a_one_line_error(shop: tuple[Path, list[str]]) -> None:
    folder, _ = shop
    done = _cli("render", "newsletter.html", "--preview", "--set", "p_purchase=abc", project=folder)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: p_purchase is a number; got 'abc' (e.g. "
                                                "p_purchase=0.2)"]  # fmt: skip
