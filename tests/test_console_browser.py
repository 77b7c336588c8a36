"""The console in a real headless Chromium (Debian's chromium and chromium-driver): log in,
every page, a campaign created from the form, previewed for real customers, sent to the outbox
and its results read; a viewer refused; customer data shown as text. A screenshot of every page
is saved under the folder the test prints (``console-screenshots`` in pytest's temporary
folder, or $SENDWISE_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console_support import HOSTILE, ConsoleShop, console_shop

DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no chromium/chromedriver (Debian packages chromium and chromium-driver; .ci/run "
    "installs them)",
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleShop]:
    with console_shop(tmp_path_factory.mktemp("console")) as s:
        yield s


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("SENDWISE_TEST_ARTIFACTS")
    folder = Path(root) / "console-screenshots" if root else tmp_path_factory.mktemp("shots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1100", "--disable-gpu"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(DRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def by_id(driver: Any, id_: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_)


def wait_for(check: Any, seconds: float = 30.0) -> Any:
    """``check()``'s first true answer; an element not there yet counts as false."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + seconds
    while True:
        try:
            got = check()
        except WebDriverException:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.3)


def login(driver: Any, shop: ConsoleShop, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{shop.base}/console/login")
    by_id(driver, "name").send_keys(name)
    by_id(driver, "password").send_keys(shop.passwords[name])
    by_id(driver, "login").click()
    wait_for(lambda: driver.current_url.endswith("/console/overview"))


def opened_links(eml: Path, shop: ConsoleShop) -> tuple[str, str, str]:
    """(open pixel URL, first click URL, arm) of a sent message, pointed at the test service."""
    import email
    import re

    from sendwise.store import open_store

    with eml.open("rb") as f:
        message = email.message_from_binary_file(f)
    html = next(p.get_payload(decode=True).decode() for p in message.walk()
                if p.get_content_type() == "text/html")  # fmt: skip
    root = shop.settings.delivery.base_url.rstrip("/")
    pixel = re.search(re.escape(root) + r"/o/[^\"']+", html).group(0)
    click = re.search(re.escape(root) + r"/c/[^\"']+", html).group(0)
    key = message["Message-ID"].strip("<>").split("@")[0]
    with open_store(shop.settings) as store:
        arm = store.messages.find([key])[key].variant
    return pixel.replace(root, shop.base), click.replace(root, shop.base), arm


def shot(driver: Any, folder: Path, name: str) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, max(900, min(int(height) + 40, 6000)))
    assert driver.save_screenshot(str(folder / f"{name}.png"))
    driver.set_window_size(1280, 1100)


def test_login_is_refused_with_a_wrong_password(
    browser: Any, shop: ConsoleShop, shots: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(f"{shop.base}/console/overview")
    assert browser.current_url.endswith("/console/login")  # not logged in: sent to log in
    by_id(browser, "name").send_keys("ana")
    by_id(browser, "password").send_keys("not her password at all")
    by_id(browser, "login").click()
    assert "wrong user name or password" in wait_for(lambda: by_id(browser, "login-error").text)
    shot(browser, shots, "00-login-refused")
    cookie = browser.get_cookie("sendwise_console")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"


def test_every_page_campaign_sent_and_results(browser: Any, shop: ConsoleShop, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    login(browser, shop, "mia")
    assert "snapshot" in browser.page_source
    shot(browser, shots, "01-overview")

    browser.get(f"{shop.base}/console/segments")
    assert by_id(browser, "segment-sizes").find_elements(By.TAG_NAME, "tr")
    rule = by_id(browser, "rule")
    rule.send_keys("frequency >= 1")
    counted = wait_for(
        lambda: (
            "customers" in by_id(browser, "rule-count").text and by_id(browser, "rule-count").text
        )
    )
    n_buyers = int(counted.split(" of ")[0].replace(",", ""))
    assert 0 < n_buyers < 1500
    rule.clear()
    rule.send_keys("frequncy >= 1")
    msg = wait_for(
        lambda: (
            "did you mean" in by_id(browser, "rule-count").text
            and by_id(browser, "rule-count").text
        )
    )
    assert "frequency" in msg
    shot(browser, shots, "02-segments")

    browser.get(f"{shop.base}/console/customers")
    by_id(browser, "q").send_keys(shop.hostile_customer)
    by_id(browser, "search").click()
    wait_for(lambda: by_id(browser, "customer-id").text == shop.hostile_customer)
    # the markup in the first name is text: shown as typed, never run
    assert by_id(browser, "field-first_name").text == HOSTILE
    assert browser.title != "owned"
    assert "&lt;script&gt;" in browser.page_source
    assert by_id(browser, "scores").find_elements(By.TAG_NAME, "tr")
    shot(browser, shots, "03-customer")

    browser.get(f"{shop.base}/console/models")
    assert browser.find_elements(By.CSS_SELECTOR, "section.model")
    assert "serving v0001" in browser.page_source
    shot(browser, shots, "04-models")

    browser.get(f"{shop.base}/console/templates")
    Select(by_id(browser, "t-name")).select_by_value("newsletter.html")
    by_id(browser, "t-customer").send_keys(shop.hostile_customer)
    by_id(browser, "t-preview").click()
    wait_for(
        lambda: browser.find_elements(By.ID, "lint") or browser.find_elements(By.ID, "t-error")
    )
    assert not browser.find_elements(By.ID, "t-error")
    assert browser.find_elements(By.CSS_SELECTOR, "iframe[sandbox]")
    shot(browser, shots, "05-templates")

    browser.get(f"{shop.base}/console/journeys")
    browser.find_element(By.LINK_TEXT, "abandoned_cart").click()
    wait_for(lambda: by_id(browser, "j-status").text == "active")
    flow = browser.find_element(By.CSS_SELECTOR, "svg.flow").text
    assert all(s in flow for s in ("wait_1h", "reminder", "bought", "then → done"))
    by_id(browser, "j-toggle").click()
    wait_for(lambda: by_id(browser, "j-status").text == "paused")
    shot(browser, shots, "06b-journey-paused")
    by_id(browser, "j-toggle").click()
    wait_for(lambda: by_id(browser, "j-status").text == "active")

    browser.get(f"{shop.base}/console/data")
    assert by_id(browser, "loads").find_elements(By.CSS_SELECTOR, "tbody tr")
    shot(browser, shots, "06-data")

    # a campaign from the form: two variants and a 10% holdout, no quiet hours
    browser.get(f"{shop.base}/console/campaigns")
    by_id(browser, "new-campaign").click()
    by_id(browser, "ss-baseline").clear()
    by_id(browser, "ss-baseline").send_keys("0.05")
    wait_for(
        lambda: (
            "customers per arm" in by_id(browser, "ss-result").text
            and "5.00%" in by_id(browser, "ss-result").text
        )
    )
    by_id(browser, "c-name").send_keys("Console spring test")
    by_id(browser, "c-audience").send_keys(shop.segment)
    by_id(browser, "c-variant1").send_keys("A")
    Select(by_id(browser, "c-template1")).select_by_value("newsletter.html")
    by_id(browser, "c-share1").send_keys("45")
    by_id(browser, "c-variant2").send_keys("B")
    Select(by_id(browser, "c-template2")).select_by_value("win-back.html")
    by_id(browser, "c-share2").send_keys("45")
    by_id(browser, "c-quiet").click()  # off
    shot(browser, shots, "07-campaign-form")
    by_id(browser, "create").click()
    wait_for(
        lambda: (
            "/console/campaigns/console-spring-test" in browser.current_url
            and browser.find_elements(By.ID, "status")
        )
    )
    assert by_id(browser, "status").text == "created"
    previews = browser.find_elements(By.CSS_SELECTOR, "figure.preview")
    assert len(previews) == 4  # 2 variants x 2 real customers of the audience
    assert all(p.find_elements(By.TAG_NAME, "iframe") for p in previews)
    shot(browser, shots, "08-campaign-preview")

    by_id(browser, "send").click()

    def finished() -> bool:
        browser.refresh()
        found = browser.find_elements(By.ID, "job-status")
        return bool(found) and found[0].text in ("done", "failed")

    wait_for(finished, 240)
    assert by_id(browser, "job-status").text == "done", by_id(browser, "job").text
    assert by_id(browser, "status").text == "done"
    sent = sum(
        int(td.text.replace(",", ""))
        for td in browser.find_elements(By.CSS_SELECTOR, "#results td.sent")
    )
    outbox = Path(shop.settings.path(shop.settings.delivery.outbox))
    assert sent > 0
    assert len(list(outbox.rglob("*.eml"))) == sent  # each message sent is in the outbox
    shot(browser, shots, "09-campaign-sent")

    # the first message is opened (its pixel) and its link followed, as a person's desktop
    # mail client would (headless Chromium calls itself HeadlessChrome: a machine): the
    # tracking service records both, and the results page counts them for the message's arm
    pixel, click, arm = opened_links(sorted(outbox.rglob("*.eml"))[0], shop)
    time.sleep(2.5)  # an open within 2 s of the send is a machine's (tracking/machines.py)
    with httpx.Client(headers={"user-agent": DESKTOP}, follow_redirects=False) as person:
        assert person.get(pixel).status_code == 200
        assert person.get(click).status_code in (302, 303, 307)  # to the shop
    browser.get(f"{shop.base}/console/campaigns/console-spring-test")

    def engaged() -> bool:
        browser.refresh()
        row = next(
            r
            for r in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
            if r.find_elements(By.TAG_NAME, "td")[0].text == arm
        )
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        return cells[4].startswith("1 (") and cells[5].startswith("1 (")

    wait_for(engaged, 30)
    shot(browser, shots, "09b-campaign-engaged")

    by_id(browser, "compute-results").click()

    def computed() -> bool:
        browser.refresh()
        return (
            bool(browser.find_elements(By.ID, "computed"))
            or by_id(browser, "job-status").text == "failed"
        )

    wait_for(computed, 180)
    assert by_id(browser, "job-status").text == "done", by_id(browser, "job").text
    arms = [
        r.find_elements(By.TAG_NAME, "td")[0].text
        for r in by_id(browser, "computed").find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    assert set(arms) == {"A", "B", "holdout"}
    shot(browser, shots, "10-campaign-results")

    browser.get(f"{shop.base}/console/campaigns")
    assert "Console spring test" in by_id(browser, "campaigns").text
    shot(browser, shots, "11-campaigns")

    browser.get(f"{shop.base}/console/overview")
    assert "console-spring-test" in by_id(browser, "overview-campaigns").text
    shot(browser, shots, "12-overview-after")
    browser.set_window_size(820, 1180)  # a tablet held upright
    browser.get(f"{shop.base}/console/campaigns/console-spring-test")
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1"
    )
    browser.save_screenshot(str(shots / "13-tablet-campaign.png"))
    browser.set_window_size(1280, 1100)


def test_viewer_reads_but_cannot_create_or_send(
    browser: Any, shop: ConsoleShop, shots: Path
) -> None:
    login(browser, shop, "vic")
    browser.get(f"{shop.base}/console/campaigns")
    assert not browser.find_elements("id", "new-campaign")
    browser.get(f"{shop.base}/console/campaigns/new")
    assert "may not" in wait_for(lambda: by_id(browser, "refused").text)
    shot(browser, shots, "14-viewer-refused")


def test_admin_reads_the_audit_log(browser: Any, shop: ConsoleShop, shots: Path) -> None:
    login(browser, shop, "ana")
    browser.get(f"{shop.base}/console/audit")
    text = by_id(browser, "audit").text
    assert "login" in text
    shot(browser, shots, "15-audit")
