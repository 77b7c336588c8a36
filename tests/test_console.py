"""The console's users, sessions and refusals: argon2 log-in, signed cookies, CSRF, roles
(a viewer cannot create or send: 403), escaping of customer data, against a real uvicorn."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from console_support import ConsoleShop, console_shop
from sendwise.console.charts import heat_grid, interval_bars, line_chart
from sendwise.console.sessions import Session, SessionSigner, csrf_ok
from sendwise.console.users import add_user, authenticate, require
from sendwise.errors import AuthenticationError, InputError, ScopeError
from sendwise.store import MemoryStore

KEY = b"k" * 43


def test_users_log_in_with_their_password_only() -> None:
    store = MemoryStore()
    assert add_user(store, "ana", "admin", "a long password")
    assert store.users.get("ana").password_hash.startswith("$argon2id$")
    assert authenticate(store, "ana", "a long password").role == "admin"
    for name, pw in (("ana", "a long passworD"), ("bob", "a long password"), ("", "")):
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            authenticate(store, name, pw)
    with pytest.raises(InputError, match="exists"):
        add_user(store, "ana", "viewer", "another password")
    assert not add_user(store, "ana", "viewer", "another password", replace=True)
    assert authenticate(store, "ana", "another password").role == "viewer"
    with pytest.raises(InputError, match="10 to 1024"):
        add_user(store, "bob", "viewer", "short")
    with pytest.raises(InputError, match="unknown role"):
        add_user(store, "bob", "root", "long enough password")


def test_the_demo_prints_the_console_and_a_fresh_login(tmp_path) -> None:
    import io

    from sendwise.cli.demo import print_console_login
    from sendwise.cli.output import OUT, SafeConsole
    from sendwise.config import init_project, load_settings
    from sendwise.store import open_store

    init_project(tmp_path / "shop")
    settings = load_settings(tmp_path / "shop")
    seen = []
    for _ in range(2):
        OUT.console = SafeConsole(file=io.StringIO(), width=200)
        print_console_login(settings, tmp_path / "shop")
        shown = OUT.console.file.getvalue()
        assert "http://localhost:8080/console" in shown
        seen.append(re.search(r"user demo, password (\S+) ", shown).group(1))
    assert seen[0] != seen[1]  # generated at each run, never a fixed default
    with open_store(settings) as store:
        assert authenticate(store, "demo", seen[1]).role == "admin"
        with pytest.raises(AuthenticationError):
            authenticate(store, "demo", seen[0])


def test_the_overview_tally_agrees_with_the_events(store: Any) -> None:
    """The first read (aggregated by the database) and the later ones (folded row by row)
    count the same as folding every event: human opens only, days in UTC, by campaign."""
    from datetime import timedelta

    from sendwise.console.tally import Tally

    t0 = datetime(2026, 11, 1, 23, 30)
    events = [
        dict(event_id=f"e{i}", customer_id="c", email="a@b.c", message_id=f"m{i % 50}",
             campaign_id="x" if i % 3 else None, variant="A",
             type=["send", "open", "click", "open", "skipped"][i % 5],
             occurred_at=t0 + timedelta(hours=i), url=None, user_agent=None,
             is_machine=i % 7 == 0, reason=None)
        for i in range(300)
    ]  # fmt: skip
    store.events.add(events[:200])
    live = Tally(store)
    live.refresh()
    store.events.add(events[200:])
    live.refresh()

    class RowsOnly:
        def __init__(self, events: Any) -> None:
            self.events = events

    folded = Tally(RowsOnly(store.events))
    folded.refresh()
    assert dict(live.counts) == dict(folded.counts)
    human_opens = sum(1 for e in events if e["type"] == "open" and not e["is_machine"])
    assert sum(n for (_d, _c, m), n in live.counts.items() if m == "open") == human_opens


def test_roles() -> None:
    require("admin", "admin")
    require("marketer", "write")
    require("viewer", "read")
    with pytest.raises(ScopeError):
        require("viewer", "write")
    with pytest.raises(ScopeError):
        require("marketer", "admin")


def test_session_cookie_is_signed_and_expires() -> None:
    signer = SessionSigner(KEY, 3600)
    cookie = signer.dumps(Session(user="ana"))
    back = signer.loads(cookie)
    assert back is not None and back.user == "ana"
    assert signer.loads(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert SessionSigner(b"x" * 43, 3600).loads(cookie) is None  # another project's key
    assert SessionSigner(KEY, -1).loads(cookie) is None  # expired
    assert signer.loads("") is None and signer.loads("garbage") is None
    assert csrf_ok(back, back.csrf)
    assert not csrf_ok(back, "") and not csrf_ok(back, None) and not csrf_ok(None, back.csrf)
    assert not csrf_ok(back, back.csrf + "x")


def _shown_as_text(value: str, html: str) -> None:
    """``value`` is in ``html`` escaped, and never raw when escaping changes it."""
    escaped = str(escape(value))
    assert escaped in html
    if escaped != value:
        assert value not in html


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_chart_labels_are_text(text: str) -> None:
    """Whatever a campaign, arm or segment is called, it is escaped in the SVG."""
    label = f"\u27e6{text}\u27e7"  # brackets no page holds, so a raw copy cannot hide
    for svg in (
        line_chart(label, [label], {label: [1.0]}),
        interval_bars(label, [(label, 0.2, 0.1, 0.3)]),
        heat_grid(label, [label], ["1"], {(label, "1"): 3.0}),
    ):
        _shown_as_text(label, str(svg))


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_customer_fields_render_as_text(text: str) -> None:
    """Any first name, segment, reason or product text reaches the page escaped (the customer
    page's own template, rendered with the console's environment)."""
    from sendwise.api.console.state import make_env

    name = f"\u27e6{text}\u27e7"
    page = make_env().get_template("customer.html").render(
        prefix="/console", user=None, csrf="t", path="/console/customers/x",
        p={"customer_id": "C1", "snapshot": {"version": 1, "as_of": None}, "source": "snapshot",
           "profile": {"first_name": name}, "scores": {"p_purchase": 0.5}, "segments": [name],
           "reasons": [name], "notes": []},
        recs=[{"rank": 1, "product_id": "P1", "score": 1.0, "source": "als",
               "product": {"name": name, "image_url": name, "price": 1.0, "category": name}}],
        timeline=[{"at": datetime(2026, 1, 1), "kind": "event", "what": name, "detail": name}],
    )  # fmt: skip
    _shown_as_text(name, page)


# --- against the running service -------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleShop]:
    with console_shop(tmp_path_factory.mktemp("console-http"), host="127.0.0.1") as s:
        yield s


class Browserless:
    """A client that keeps the session cookie itself (httpx's jar, like the standard library's,
    will not send a Secure cookie over plain HTTP; a browser does to localhost)."""

    def __init__(self, base: str) -> None:
        self.base = f"{base}/console"
        self.client = httpx.Client(follow_redirects=False, timeout=60)
        self.cookie = ""

    def _keep(self, r: httpx.Response) -> httpx.Response:
        found = re.search(r"sendwise_console=([^;]+)", r.headers.get("set-cookie", ""))
        if found:
            self.cookie = found.group(1)
        return r

    def get(self, path: str) -> httpx.Response:
        return self._keep(
            self.client.get(self.base + path, headers={"cookie": f"sendwise_console={self.cookie}"})
        )

    def post(self, path: str, data: dict) -> httpx.Response:
        return self._keep(
            self.client.post(
                self.base + path, data=data, headers={"cookie": f"sendwise_console={self.cookie}"}
            )
        )

    def csrf(self, path: str = "/login") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.get(path).text).group(1)

    def login(self, name: str, password: str) -> None:
        r = self.post("/login", {"csrf": self.csrf(), "name": name, "password": password})
        assert r.status_code == 303, r.text


@pytest.fixture
def browserless(shop: ConsoleShop) -> Iterator[Callable[[], Browserless]]:
    """Factory of clients of the shop's console, closed at the end of the test."""
    made: list[Browserless] = []

    def make() -> Browserless:
        made.append(Browserless(shop.base))
        return made[-1]

    yield make
    for c in made:
        c.client.close()


def test_pages_need_a_login(shop: ConsoleShop, browserless: Callable[[], Browserless]) -> None:
    c = browserless()
    for path in ("/overview", "/segments", "/customers", "/models", "/campaigns", "/journeys",
                 "/templates",
                 "/data", "/segments/count?rule=x", "/audit"):  # fmt: skip
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", path
    r = c.get("/login")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert "script-src 'self'" in r.headers["content-security-policy"]


def campaign_form(csrf: str | None, segment: str, name: str) -> dict:
    form = {"name": name, "audience_kind": "segment", "audience": segment, "variant1": "A",
            "template1": "newsletter.html", "holdout": "10", "send_at": "now"}  # fmt: skip
    if csrf is not None:
        form["csrf"] = csrf
    return form


def test_a_viewer_cannot_create_or_send(
    shop: ConsoleShop, browserless: Callable[[], Browserless]
) -> None:
    from sendwise.store import open_store

    mia = browserless()
    mia.login("mia", shop.passwords["mia"])
    r = mia.post(
        "/campaigns", campaign_form(mia.csrf("/campaigns/new"), shop.segment, "Made by mia")
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/campaigns/made-by-mia"

    vic = browserless()
    vic.login("vic", shop.passwords["vic"])
    assert vic.get("/campaigns/made-by-mia").status_code == 200  # a viewer reads
    token = vic.csrf("/campaigns")
    r = vic.post("/campaigns", campaign_form(token, shop.segment, "Made by vic"))
    assert r.status_code == 403 and "may not" in r.text
    assert vic.post("/campaigns/made-by-mia/send", {"csrf": token}).status_code == 403
    assert vic.post("/campaigns/made-by-mia/results", {"csrf": token}).status_code == 403
    assert vic.get("/campaigns/new").status_code == 403
    assert vic.get("/audit").status_code == 403
    assert vic.post("/journeys/abandoned_cart/pause", {"csrf": token}).status_code == 403
    with open_store(shop.settings) as store:
        assert store.campaigns.get("made-by-vic") is None
        assert store.campaigns.get("made-by-mia").status == "created"  # not sent
        refused = [
            a for a in store.audit.recent(50) if a.user_name == "vic" and a.outcome == "refused"
        ]
        assert len(refused) >= 3


def test_a_post_without_the_csrf_token_is_refused(
    shop: ConsoleShop, browserless: Callable[[], Browserless]
) -> None:
    from sendwise.store import open_store

    mia = browserless()
    mia.login("mia", shop.passwords["mia"])
    other = browserless()
    other_token = other.csrf()  # a valid token, of another session
    for token in (None, "", "forged", other_token):
        r = mia.post("/campaigns", campaign_form(token, shop.segment, "No token"))
        assert r.status_code == 403 and "security token" in r.text
    assert mia.post("/campaigns/made-by-mia/send", {}).status_code == 403
    assert mia.post("/logout", {}).status_code == 403
    # log-in itself needs the token of the page it came from
    fresh = browserless()
    fresh.get("/login")
    r = fresh.post("/login", {"name": "mia", "password": shop.passwords["mia"]})
    assert r.status_code == 403
    with open_store(shop.settings) as store:
        assert store.campaigns.get("no-token") is None


def test_customer_data_is_escaped(
    shop: ConsoleShop, browserless: Callable[[], Browserless]
) -> None:
    from console_support import HOSTILE

    c = browserless()
    c.login("vic", shop.passwords["vic"])
    r = c.get(f"/customers/{shop.hostile_customer}")
    assert r.status_code == 200
    assert HOSTILE not in r.text
    assert "&lt;script&gt;document.title=&#34;owned&#34;&lt;/script&gt;" in r.text


def count_when_ready(c: Browserless, path: str) -> dict:
    """Asks until the columns are loaded: until then the count answers at once that it is
    getting ready (never an error, never a wait)."""
    deadline = time.monotonic() + 60
    while True:
        body = c.get(path).json()
        if not body.get("preparing"):
            return body
        assert "getting ready" in body["message"] and not body["failed"]
        assert time.monotonic() < deadline, "the columns were never loaded"
        time.sleep(0.2)


def test_rule_count_answers_and_suggests(
    shop: ConsoleShop, browserless: Callable[[], Browserless]
) -> None:
    c = browserless()
    c.login("vic", shop.passwords["vic"])
    ok = count_when_ready(c, "/segments/count?rule=frequency%20%3E%3D%201")
    assert 0 < ok["count"] < ok["of"] == 1500
    bad = c.get("/segments/count?rule=frequncy%20%3E%3D%201").json()
    assert bad["kind"] == "unknown_field" and bad["suggestion"] == "frequency"
    hostile = c.get("/segments/count?rule=__import__('os').system('x')").json()
    assert hostile["kind"] in ("forbidden", "syntax")


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def test_publish_keeps_the_segments_figures_and_a_columns_file(shop: ConsoleShop) -> None:
    """The figures the segments page reads (``meta["console"]``, computed by the publish from
    the rows it wrote) equal those computed from the snapshot's rows in the store, and the
    Parquet file holds the same profiles."""
    import pyarrow.parquet as pq

    from sendwise.serving.console_columns import ProfileColumns, flat_table, parquet_path
    from sendwise.serving.console_digest import summarize
    from sendwise.store import open_store
    from sendwise.store.console import snapshot_rows

    with open_store(shop.settings) as store:
        version = int(store.snapshots.current_version())
        kept = store.snapshots.info(version).meta["console"]
        from_store = summarize(ProfileColumns(flat_table(snapshot_rows(store, version)), version))
    assert _rounded(kept) == _rounded(from_store)  # sums in another order: last digits
    assert kept["rows"] == 1500
    assert sum(v for _r, _f, v in kept["grid"]["customers"]) > 0
    assert kept["clusters"] and all(c["cluster_description"] for c in kept["clusters"])
    assert "frequency" in kept["fields"]
    data = pq.read_table(parquet_path(shop.settings, version))
    assert data.num_rows == 1500
    assert data.num_rows == len(set(data.column("customer_id").to_pylist()))


def test_segments_page_reads_the_published_figures(
    shop: ConsoleShop, browserless: Callable[[], Browserless]
) -> None:
    c = browserless()
    c.login("vic", shop.passwords["vic"])
    for measure in ("customers", "revenue", "<b>x</b>"):
        r = c.get(f"/segments?measure={measure}")
        assert r.status_code == 200
        assert "<svg" in r.text and "getting ready" not in r.text
        assert 'id="clusters"' in r.text and "no clusters in this snapshot" not in r.text


def test_campaign_counts_are_warm_and_refreshed_behind(tmp_path) -> None:
    """Counts past their 15 s are shown at once and recounted in the background; a status
    change recounts before answering; ``warm`` counts a sent campaign at start-up."""
    from sendwise.campaigns.definition import parse_definition
    from sendwise.config import init_project, load_settings
    from sendwise.console.campaign_views import CountsCache
    from sendwise.store import open_store
    from sendwise.store.records import utcnow
    from sendwise.store.repositories import CampaignRecord

    init_project(tmp_path / "p")
    defn = parse_definition({"name": "Counted", "audience": {"segment": "Champions"},
                             "variants": [{"name": "A", "template": "welcome.html",
                                           "share": 100}]})  # fmt: skip
    cid, now = defn.campaign_id, utcnow()
    with open_store(load_settings(tmp_path / "p")) as store:
        store.campaigns.save(
            CampaignRecord(cid, defn.name, "created", defn.model_dump(mode="json")), now
        )
        plan = [{"message_key": f"k{i}", "customer_id": f"c{i}", "email": f"c{i}@x.example",
                 "variant": "A", "template": None, "status": "sent", "reason": None,
                 "scheduled_at": now, "timezone": "UTC"} for i in range(3)]  # fmt: skip
        store.messages.add_plan(cid, plan, now)
        store.campaigns.set_status(cid, "done", at=now)
        cache = CountsCache(seconds=0.0)
        cache.warm(store)
        counts, _age = cache.get(store, cid, ("done", None, None))
        assert counts["A"]["planned:sent"] == 3 and "open" not in counts["A"]
        store.events.add([{"event_id": "o1", "type": "open", "customer_id": "c1",
                           "email": "c1@x.example", "message_id": "k1", "campaign_id": cid,
                           "variant": "A", "url": None, "user_agent": None, "is_machine": False,
                           "reason": None, "occurred_at": now}])  # fmt: skip
        deadline = time.monotonic() + 30
        while "open" not in cache.get(store, cid, ("done", None, None))[0]["A"]:
            assert time.monotonic() < deadline, "never recounted"
            time.sleep(0.05)
        assert cache.get(store, cid, ("done", None, None))[0]["A"]["open"] == 1
        fresh = CountsCache(seconds=3600.0)
        fresh.get(store, cid, ("done", None, None))
        store.events.add([{"event_id": "c1", "type": "click", "customer_id": "c1",
                           "email": "c1@x.example", "message_id": "k1", "campaign_id": cid,
                           "variant": "A", "url": None, "user_agent": None, "is_machine": False,
                           "reason": None, "occurred_at": now}])  # fmt: skip
        assert "click" not in fresh.get(store, cid, ("done", None, None))[0]["A"]
        assert fresh.get(store, cid, ("done", "job1", "done"))[0]["A"]["click"] == 1


def test_the_warm_up_compiles_lints_and_renders_every_template(shop: ConsoleShop) -> None:
    """What the first preview would pay is paid by ``warm_previews``: every template of the
    project compiled, linted (the findings kept) and rendered for a real customer."""
    from sendwise.console.views import template_names
    from sendwise.console.warm import LintCache, first_customer, warm_previews
    from sendwise.content.lint import lint_template
    from sendwise.content.render import Renderer
    from sendwise.serving.service import Serving
    from sendwise.store import open_store

    names = template_names(shop.settings)
    assert "newsletter.html" in names
    with open_store(shop.settings) as store:
        renderer, lints = Renderer(shop.settings), LintCache()
        customer = first_customer(store)
        assert customer is not None
        done = warm_previews(renderer, Serving(store, shop.settings), store, lints, names,
                             base_url="http://127.0.0.1", key=b"k" * 32)  # fmt: skip
        assert done == names
        assert set(names) <= set(renderer._compiled)
        for name in names:  # kept: the same findings the linter gives
            assert lints.get(renderer, name) == lint_template(Renderer(shop.settings), name)


def test_kept_lint_findings_follow_the_template_files(tmp_path) -> None:
    """A changed template file is linted again: an image without alt text added to a slot's
    block (read from its file at each lint) shows."""
    from sendwise.config import init_project, load_settings
    from sendwise.console.warm import LintCache
    from sendwise.content.render import Renderer

    init_project(tmp_path / "p")
    settings = load_settings(tmp_path / "p")
    renderer, lints = Renderer(settings), LintCache()
    before = lints.get(renderer, "newsletter.html")
    assert "img-no-alt" not in {p.code for p in before}
    assert lints.get(renderer, "newsletter.html") == before
    path = settings.path(settings.content.templates) / "blocks" / "offer-generic.html"
    if not path.exists():  # the project uses the starter's block: its own copy overrides it
        from sendwise.content.compiler import STARTERS

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((STARTERS / "blocks" / "offer-generic.html").read_text("utf-8"))
        assert lints.get(renderer, "newsletter.html") == before
    path.write_text(path.read_text("utf-8") + '\n<img src="https://x.example/a.png">\n')
    after = lints.get(renderer, "newsletter.html")
    assert "img-no-alt" in {p.code for p in after}
