"""The live page in a real browser (Debian's chromium, headless, driven through its chromedriver):
a worker fed by the simulator, the page's numbers equal the API's, no console errors.

The test command installs chromium and chromium-driver (dev.py); a missing browser fails here.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from streams.kafka.broker import EmbeddedBroker
from tests.harness import WorkerProcess, get_json, produce, simulated_messages, wait_until

pytestmark = pytest.mark.integration

SCREENSHOT = os.environ.get("LEADPULSE_PAGE_SCREENSHOT")  # where to keep a screenshot (README's)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Debian's chromium and chromium-driver are needed (python3 dev.py test installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


def cells(browser: webdriver.Chrome) -> dict[tuple[str, str], str]:
    """Every marked cell, read in one script (the page rebuilds its tables every few seconds)."""
    rows = browser.execute_script(
        "return [...document.querySelectorAll('td[data-team][data-field]')]"
        ".map(cell => [cell.dataset.team, cell.dataset.field, cell.textContent])"
    )
    return {(team, field): text for team, field, text in rows}


def away_from_midnight() -> None:
    """The page shows today: start where today (UTC, the worker's reporting timezone) has begun
    long enough to hold answered leads and does not end before the test does."""
    seconds = time.time() % 86400
    if seconds > 86400 - 120 or seconds < 300:
        time.sleep((300 - seconds) % 86400)


def js_round(number: float) -> int:
    """JavaScript's Math.round: halves up (Python's round takes them to the even neighbour)."""
    return math.floor(number + 0.5)


def updates(browser: webdriver.Chrome) -> int:
    return int(browser.execute_script("return Number(document.body.dataset.updates || 0)"))


def test_the_page_shows_the_floor_from_the_api(
    broker: EmbeddedBroker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    away_from_midnight()
    messages = simulated_messages(30 * 60, rate=5)
    worker = WorkerProcess(broker.bootstrap, "page", tmp_path / "worker").start()
    try:
        sent = asyncio.run(produce(broker.bootstrap, messages))
        wait_until(lambda: worker.has_processed(sent), 90, "input processed")
        teams = get_json(worker.url + "/teams")["teams"]
        assert len(teams) == 3
        browser.get(worker.url + "/")
        # Two refreshes after all input is in: the page shows what the API answers now.
        WebDriverWait(browser, 30).until(lambda driver: updates(driver) >= 2)
        shown = cells(browser)
        for team in teams:
            awaiting = get_json(f"{worker.url}/teams/{team}/awaiting")
            metrics = get_json(f"{worker.url}/teams/{team}/metrics")["metrics"]
            assert shown[(team, "waiting")] == str(awaiting["total"]), team
            (response,) = metrics["leadpulse_first_response_seconds"]
            assert shown[(team, "answered")] == str(response["count"]) and response["count"] > 0, team
            for row in metrics["leadpulse_activities"]:
                if row["labels"]["activity"] in ("calls", "emails_sent"):
                    assert shown[(team, row["labels"]["activity"])] == str(int(row["value"])), team
            for row in metrics["leadpulse_pipeline_deals"]:
                assert shown[(team, "pipeline_" + row["labels"]["stage"])] == str(int(row["value"])), team
            quarter = get_json(f"{worker.url}/teams/{team}/metrics?period=quarter")["ratios"]
            (won,) = quarter["quota_attainment"]  # the simulated floor's quotas are in USD
            (forecast,) = quarter["forecast_attainment"]
            assert won["denominator"] > 0 and forecast["numerator"] >= won["numerator"], team
            assert shown[(team, "won")] == f"{js_round(won['numerator']):,} USD", team
            assert shown[(team, "quota")] == f"{js_round(won['denominator']):,} USD", team
            assert shown[(team, "forecast")] == f"{js_round(forecast['numerator']):,} USD", team
            assert shown[(team, "forecast_share")] == f"{js_round(forecast['value'] * 100)} %", team
        assert browser.find_element(By.ID, "status").text.startswith("updated")
        if SCREENSHOT:
            browser.save_screenshot(SCREENSHOT)
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
    finally:
        worker.stop()


def test_the_page_asks_for_the_token_and_then_shows_the_floor(
    broker: EmbeddedBroker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    worker = WorkerProcess(
        broker.bootstrap, "guarded", tmp_path / "worker", extra_env={"LEADPULSE_API_TOKEN": "page-token"}
    ).start()
    try:
        sent = asyncio.run(produce(broker.bootstrap, simulated_messages(5 * 60, rate=2)))
        wait_until(lambda: worker.has_processed(sent), 90, "input processed")
        browser.get(worker.url + "/")  # the shell itself needs no token
        form = browser.find_element(By.ID, "token")
        WebDriverWait(browser, 30).until(lambda driver: form.is_displayed())
        assert "asks for an API token" in browser.find_element(By.ID, "status").text
        browser.find_element(By.ID, "token-input").send_keys("page-token")
        form.submit()
        WebDriverWait(browser, 30).until(lambda driver: updates(driver) >= 1 and len(cells(driver)) > 0)
        assert not form.is_displayed()
        teams = {team for team, _ in cells(browser)}
        assert teams == set(get_json(worker.url + "/teams", {"Authorization": "Bearer page-token"})["teams"])
    finally:
        worker.stop()
