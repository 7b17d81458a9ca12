"""End to end in headless Chromium: load a dataset, watch it reach 100 %, fail a run,
retry it from the page, and see the retry succeed. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from service.ledger.status import run_status as status
from service.live import Live
from service.postgres import connect
from tests.conftest import Workers, purge_queue
from tests.service.dashboard.support import TIMEZONE_PATH
from tests.support.browser import available, chromium, shoot

pytestmark = [
    pytest.mark.browser, pytest.mark.e2e,
    pytest.mark.skipif(not available(),
                       reason="Debian's chromium and chromium-driver are not installed"),
]


@pytest.fixture()
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, quit (with its driver) after the test."""
    profile = tempfile.mkdtemp(prefix="geoload-chromium-")
    driver = chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: webdriver.Chrome, what: str, check: Callable[[], Any],
         timeout: float = 120) -> Any:
    """Wait until ``check`` is truthy; the page swaps its content live, so retry stale reads."""
    return WebDriverWait(driver, timeout, poll_frequency=0.25,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda _: check(), message=f"waiting for {what}")


def css(driver: webdriver.Chrome, selector: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, selector)


def heading(driver: webdriver.Chrome) -> str:
    return str(css(driver, "main h1").text)


def run_id_from_url(driver: webdriver.Chrome) -> str:
    found = re.search(r"/runs/([^/?#]+)$", driver.current_url)
    assert found, driver.current_url
    return found.group(1)


def percent(driver: webdriver.Chrome, key: str) -> str:
    return str(css(driver, f'.bar[data-key="{key}"]').get_attribute("data-percent"))


@pytest.fixture()
def fresh_workers(clean_db, tmp_path) -> Iterator[Workers]:
    """Workers with an empty cache of their own: the load must download to show its progress
    (with the session's cache an earlier test's copy answers 304 and nothing is fetched)."""
    purge_queue(clean_db)
    group = Workers(replace(clean_db, cache_dir=tmp_path / "cache"))
    group.wait_ready()
    yield group
    group.stop()


def test_load_watch_fail_and_retry_in_chromium(fresh_workers, upstream, dashboard_process,
                                               browser: webdriver.Chrome) -> None:
    settings = fresh_workers.settings
    dashboard = dashboard_process(settings)
    b = browser

    # 1. load a small dataset, from its card on the Datasets page; upstream is slowed down
    #    so that the download is seen in progress
    upstream.fault(TIMEZONE_PATH, "throttle", rate=1_500_000)
    b.get(dashboard.url + "/datasets")
    assert "Not loaded yet." in css(b, "main").text
    css(b, '[data-test="load-timezone"]').click()
    wait(b, "the new run's page", lambda: "/runs/" in b.current_url)
    first = run_id_from_url(b)
    b.execute_script("window.geoloadNoReload = true")
    wait(b, "the download to show", lambda: b.find_elements(
        By.CSS_SELECTOR, '.bar[data-key="timezone:download"]'))
    shots = [shoot(b, "00-run-downloading.png")]
    upstream.clear_faults()

    # 2. the run page reaches 100 % by itself, without a reload
    seen: set[float] = set()

    def finished() -> bool:
        seen.add(float(percent(b, "timezone")))
        return percent(b, "timezone") == "100.0" and "succeeded" in heading(b)

    wait(b, "the run to reach 100 %", finished)
    assert min(seen) < 100.0, seen
    assert b.execute_script("return window.geoloadNoReload === true"), "the page was reloaded"
    assert "100 %" in css(b, '.bar[data-key="timezone"]').text
    layers = b.find_elements(By.CSS_SELECTOR, '.card[data-dataset="timezone"] td .bar')
    assert layers and all(x.get_attribute("data-percent") == "100.0" for x in layers)
    assert "features/s" in css(b, '.card[data-dataset="timezone"] .meta').text
    shots.append(shoot(b, "01-run-succeeded.png"))

    # 3. a run that fails (upstream answers 404), then Retry on its page
    upstream.fault(TIMEZONE_PATH, "status", status=404)
    try:
        b.get(dashboard.url + "/runs")
        css(b, '[data-test="load-timezone"]').click()
        wait(b, "the failing run's page", lambda: run_id_from_url(b) != first
             if "/runs/" in b.current_url else False)
        failed = run_id_from_url(b)
        wait(b, "the run to fail", lambda: "failed" in heading(b))
        assert "404" in css(b, ".error").text
        shots.append(shoot(b, "02-run-failed.png"))
        b.get(dashboard.url + "/failures")
        assert failed in css(b, "table.failures").text
        shots.append(shoot(b, "03-failures.png"))
    finally:
        upstream.clear_faults()
    b.get(f"{dashboard.url}/runs/{failed}")
    css(b, '[data-test="retry-run"]').click()
    wait(b, "the retry's page", lambda: run_id_from_url(b) != failed)
    retry = run_id_from_url(b)

    # 4. the retried run succeeds
    wait(b, "the retry to succeed", lambda: percent(b, "timezone") == "100.0"
         and "succeeded" in heading(b))
    assert f"retry of {failed}" in css(b, "main .meta").text
    shots.append(shoot(b, "04-retry-succeeded.png"))
    b.get(f"{dashboard.url}/runs/{failed}")
    assert f"retried by {retry}" in css(b, "main .meta").text
    with connect(settings, autocommit=True) as conn:
        final = status(conn, Live(settings), retry)
    assert final is not None and final.status == "succeeded" and final.retry_of == failed

    # 5. the other pages, as a person sees them after all this
    b.get(dashboard.url + "/datasets")
    wait(b, "the map preview", lambda: b.execute_script(
        "const i = document.querySelector('.previews img');"
        "return i && i.complete && i.naturalWidth > 0"))
    shots.append(shoot(b, "05-datasets.png"))
    b.get(dashboard.url + "/queues")
    wait(b, "workers", lambda: "status-alive" in css(b, "table.workers").get_attribute(
        "innerHTML"))
    shots.append(shoot(b, "06-queues-workers.png"))
    b.get(dashboard.url + "/runs")
    rows = b.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows][:3] == [retry, failed, first]
    shots.append(shoot(b, "07-runs.png"))
    logs = _console_errors(b)
    assert not logs, logs
    for shot in shots:
        assert shot.stat().st_size > 10_000, shot


def _console_errors(driver: webdriver.Chrome) -> list[str]:
    """Script errors and CSP violations the pages caused, if the driver reports them."""
    try:
        entries = driver.get_log("browser")
    except WebDriverException:
        return []
    return [e["message"] for e in entries if e.get("level") == "SEVERE"
            and "favicon" not in e["message"]]
