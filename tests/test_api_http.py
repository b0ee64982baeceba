"""The HTTP API over a real aiohttp server, on the hand-computed scenario of test_catalog.

NOW is 2024-03-05 12:30 UTC. Expected values are written out from the scenario's events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.partitioner import DefaultPartitioner
from yarl import URL

from streams.api.cluster import Gatherer
from streams.api.local import LocalView
from streams.api.openapi import ROUTES
from streams.api.routes import PUBLIC, register_routes
from streams.api.service import Api
from streams.metrics.labels import SourceLabels
from tests.test_catalog import at, scenario  # noqa: F401 - the fixture
from tests.test_processor_and_collector import NOW, Harness, stage

SELF = "http://worker-1:6066"
TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def worker_app(
    harness: Harness,
    *,
    token: str | None,
    owned: Callable[[], frozenset[int] | None],
    members: Callable[[], dict[str, list[int]]],
    url: str = SELF,
) -> tuple[web.Application, Gatherer]:
    """One worker's web application over the harness's tables, owning ``owned``."""
    local = LocalView(
        rollups=harness.rollups,
        directory=harness.directory,
        deals=harness.deals,
        ctx=harness.rollups.ctx,
        source_labels=SourceLabels(),
        topic_names={},
        owned=owned,
        clock=lambda: NOW,
        before_read=harness.profile_sync,
    )
    gatherer = Gatherer(members, url, 2, token)
    app = web.Application()
    not_ready = lambda: None if owned() is not None else "tables are recovering"  # noqa: E731
    register_routes(app, Api(local, gatherer), harness.collector.exposition, not_ready, token=token, version="t")
    return app, gatherer


@asynccontextmanager
async def serve(
    harness: Harness,
    *,
    token: str | None = None,
    owned: Callable[[], frozenset[int] | None] = lambda: frozenset({0, 1}),
    members: Callable[[], dict[str, list[int]]] = lambda: {SELF: [0, 1]},
) -> AsyncIterator[TestClient]:
    app, gatherer = worker_app(harness, token=token, owned=owned, members=members)
    async with TestClient(TestServer(app)) as client:
        yield client
    await gatherer.close()


@pytest.fixture
def floor(scenario: Harness) -> Harness:  # noqa: F811
    """The scenario and one more lead: ann's, 1000 s old, unanswered (past its 300 s SLA)."""
    scenario.deals_in(scenario.message("crm.deal-stages", 1, "d", stage("d", "ann", at(-1000), "new", "d1")))
    return scenario


async def get(client: TestClient, path: str, status: int = 200, **headers: str) -> Any:
    response = await client.get(path, headers=headers)
    body = await response.json()
    assert response.status == status, body
    assert response.content_type == "application/json"
    return body


def row(rows: list[dict], **labels: str) -> dict:
    (found,) = [item for item in rows if all(item["labels"].get(k) == v for k, v in labels.items())]
    return found


async def test_a_deal(floor: Harness) -> None:
    async with serve(floor) as client:
        won = await get(client, "/deals/a")
        assert (won["stage"], won["owner"], won["team"], won["source"], won["deal_type"]) == (
            "won",
            "bob",
            "emea",
            "inbound_demo",
            "upsell",
        )
        assert (won["amount"], won["currency"], won["closed"]["outcome"]) == ("5000", "EUR", "won")
        assert won["first_response"]["seconds"] == 100 and won["first_response"]["rep"] == "ann"
        assert won["sla"]["state"] == "closed" and won["stage_events"] == 4 and won["activities"] == 6
        waiting = await get(client, "/deals/d")
        assert (waiting["sla"]["state"], waiting["sla"]["steps_crossed"], waiting["first_response"]) == (
            "breached",
            1,
            None,
        )
        assert (await get(client, "/deals/nope", 404))["error"] == "unknown deal 'nope'"


async def test_a_rep_and_a_team_in_any_period(floor: Harness) -> None:
    async with serve(floor) as client:
        ann = await get(client, "/reps/ann/metrics")
        assert ann["period"] == {"kind": "day", "label": "2024-03-05", "start": "2024-03-05T00:00:00Z"}
        metrics = ann["metrics"]
        assert row(metrics["leadpulse_activities"], activity="calls")["value"] == 2
        assert row(metrics["leadpulse_activity_target"], activity="calls", period="day")["value"] == 40
        response = row(metrics["leadpulse_first_response_seconds"])
        assert (response["count"], response["sum"], response["buckets"]["60"], response["buckets"]["300"]) == (
            1,
            100,
            0,
            1,
        )
        assert "value" not in response and "count" not in row(metrics["leadpulse_activities"], activity="calls")
        yesterday = await get(client, "/teams/emea/metrics?period=day&start=2024-03-04")
        assert row(yesterday["metrics"]["leadpulse_won_amount"], currency="USD")["value"] == 300
        assert yesterday["metrics"]["leadpulse_activities"] == []
        week = await get(client, "/teams/emea/metrics?period=week&start=2024-03-07")
        assert week["period"]["label"] == "2024-03-04"  # a week is named by its Monday
        assert row(week["metrics"]["leadpulse_won_amount"], currency="USD")["value"] == 300
        assert row(week["metrics"]["leadpulse_won_amount"], currency="EUR")["value"] == 5000
        hour = await get(client, "/reps/bob/metrics?period=hour&start=2024-03-05T12")
        assert hour["period"]["start"] == "2024-03-05T12:00:00Z"


async def test_a_team_s_waiting_leads_oldest_first(floor: Harness) -> None:
    async with serve(floor) as client:
        body = await get(client, "/teams/emea/awaiting")
        assert (body["total"], body["breached"], body["oldest_waiting_seconds"]) == (2, 1, 1000)
        assert [
            (lead["deal_id"], lead["rep"], lead["waiting_seconds"], lead["sla_breached"]) for lead in body["leads"]
        ] == [
            ("d", "ann", 1000, True),
            ("c", "bob", 100, False),
        ]
        first = await get(client, "/teams/emea/awaiting?limit=1")
        assert [lead["deal_id"] for lead in first["leads"]] == ["d"] and first["total"] == 2
        assert (await get(client, "/teams"))["teams"] == ["emea"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/reps/ann/metrics?period=decade", 400, "period must be one of hour, day, week, month, quarter, year (got"),
        ("/reps/ann/metrics?period=quarter&start=2024-02-01", 400, "start for period=quarter is the first day of"),
        ("/reps/ann/metrics?start=2024-13-01", 400, "start is not a date (YYYY-MM-DD) for period=day"),
        ("/reps/ann/metrics?period=hour&start=2024-03-05", 400, "start for an hour is YYYY-MM-DDTHH"),
        ("/teams/emea/awaiting?limit=0", 400, "limit must be a whole number from 1 to 1000 (got '0')"),
        ("/teams/emea/awaiting?limit=x", 400, "limit must be a whole number"),
        ("/reps/zed/metrics", 404, "unknown rep 'zed'"),
        ("/teams/apac/metrics", 404, "unknown team 'apac'"),
        ("/teams/apac/awaiting", 404, "unknown team 'apac'"),
        ("/deals/zzz", 404, "unknown deal 'zzz'"),
        ("/reps/a%2Fb%20c/metrics", 404, "unknown rep 'a/b c'"),  # any character, percent-encoded
        ("/no/such/route", 404, "Not Found: GET /no/such/route"),
        ("/reps/ann/metrics?start=9999-12-31", 400, "start must lie between the years 1900 and 9998"),
        ("/teams/emea/awaiting?limit=%C2%B2", 400, "limit must be a whole number"),  # "²": a digit, not ASCII
        # The internal routes take a period only as the calendar labels it.
        ("/internal/reports/rep/ann?kind=week&label=2024-03-05", 400, "kind and label must name a period"),
        ("/internal/reports/rep/ann?kind=hour&label=0001-01-01T00:00%2B01:00", 400, "kind and label must name"),
        ("/internal/reports/boss/ann?kind=day&label=2024-03-05", 404, "unknown subject 'boss'"),
    ],
)
async def test_errors_say_what_is_wrong(floor: Harness, path: str, status: int, message: str) -> None:
    async with serve(floor) as client:
        assert (await get(client, path, status))["error"].startswith(message)


async def test_not_ready_and_incomplete_answers_are_503(floor: Harness) -> None:
    async with serve(floor, owned=lambda: None) as client:
        for path in ("/deals/a", "/reps/ann/metrics", "/teams/emea/awaiting", "/teams", "/health/ready"):
            response = await client.get(path)
            assert response.status == 503, path
        response = await client.get("/reps/ann/metrics")
        assert response.headers["Retry-After"] == "2"
        assert "recovering" in (await response.json())["error"]
    # This worker owns partition 0 only and nobody else answers for partition 1: a rebalance.
    async with serve(floor, owned=lambda: frozenset({0}), members=lambda: {SELF: [0]}) as client:
        body = await get(client, "/teams/emea/metrics", 503)
        assert body["error"] == "a rebalance is under way (partitions [1] unanswered); retry shortly"
    async with serve(floor, members=lambda: {}) as client:
        assert "not assigned" in (await get(client, "/teams/emea/awaiting", 503))["error"]


async def test_the_token_guards_everything_but_the_public_routes(
    floor: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    guarded = ["/openapi.json", "/teams", "/deals/a", "/reps/ann/metrics", "/teams/emea/metrics"]
    guarded += ["/teams/emea/awaiting", "/internal/deals/a", "/internal/reports/rep/ann?kind=day&label=2024-03-05"]
    guarded += ["/internal/awaiting/emea"]
    async with serve(floor, token=TOKEN) as client:
        for path in guarded:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = await client.get(path, headers=headers)
                assert response.status == 401, (path, headers)
                assert response.headers["WWW-Authenticate"] == "Bearer"
                assert (await response.json())["error"] == "missing or wrong bearer token"
            response = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status == 200, path
        for path in PUBLIC:
            response = await client.get(path)
            assert response.status == 200, path
    async with serve(floor) as client:  # no token configured: nothing asks for one
        for path in guarded:
            assert (await client.get(path)).status == 200, path
    assert TOKEN not in caplog.text


async def test_the_openapi_document_and_the_page(floor: Harness) -> None:
    async with serve(floor) as client:
        spec = await get(client, "/openapi.json")
        assert spec["openapi"].startswith("3.")
        assert sorted(spec["paths"]) == sorted(route.path for route in ROUTES)
        assert set(spec["components"]["schemas"]) >= {"DealBody", "MetricsBody", "AwaitingBody", "ErrorBody"}
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
        assert "<script" in text and "http" not in text.replace("http-equiv", "")  # nothing fetched from outside


async def test_two_workers_answer_alike_over_http(floor: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Worker A owns partition 0 and worker B partition 1 of the same tables: each asks the other
    over HTTP (with the token) and both answer what one worker owning everything answers."""
    caplog.set_level(logging.DEBUG)
    # A deal where Kafka's default partitioner puts its key, and one a producer put elsewhere.
    for key in ("routed", "misplaced"):
        home = DefaultPartitioner()(key.encode(), [0, 1], [])
        partition = home if key == "routed" else 1 - home
        message = floor.message("crm.deal-stages", partition, key, stage(key, "ann", at(-50), "new", key))
        await floor.processor.process_deal_messages([message])
    urls: dict[str, list[int]] = {}
    servers = []
    for part in (0, 1):
        server = TestServer(web.Application())  # to learn its port first
        await server.start_server()
        url = str(server.make_url("")).rstrip("/")
        await server.close()
        app, _ = worker_app(
            floor, token=TOKEN, owned=lambda part=part: frozenset({part}), members=lambda: urls, url=url
        )
        servers.append(TestServer(app, port=URL(url).port))
        urls[url] = [part]
    clients = [TestClient(server) for server in servers]
    for client in clients:
        await client.start_server()
    try:
        async with serve(floor) as whole:
            for path in ("/reps/ann/metrics", "/teams/emea/metrics?period=week", "/teams/emea/awaiting", "/teams"):
                expected = await get(whole, path)
                for client in clients:
                    assert await get(client, path, **AUTH) == expected, path
            for deal in ("a", "b", "c", "y", "d", "routed", "misplaced"):
                expected = await get(whole, f"/deals/{deal}")
                for client in clients:
                    assert await get(client, f"/deals/{deal}", **AUTH) == expected, deal
            for client in clients:
                assert (await get(client, "/deals/nope", 404, **AUTH))["error"] == "unknown deal 'nope'"
        # Worker B stops answering: A says which worker, and that it is worth a retry.
        await clients[1].close()
        body = await get(clients[0], "/reps/ann/metrics", 503, **AUTH)
        assert body["error"].startswith(f"worker {list(urls)[1]} did not answer")
    finally:
        for client in clients:
            await client.close()
    assert TOKEN not in caplog.text


async def test_other_methods_and_request_bodies_are_refused(floor: Harness) -> None:
    """The API only reads: another method is a 405, a request body (of any size) a 413."""
    async with serve(floor, token=TOKEN) as client:
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
            response = await client.request(method, "/deals/a", headers=AUTH)
            assert response.status == 405, method
            assert (await response.json())["error"] == f"Method Not Allowed: {method} /deals/a"
        for path in ("/deals/a", "/metrics"):
            response = await client.get(path, headers=AUTH, data=b"x" * 5_000_000)
            assert response.status == 413, path
            assert (await response.json())["error"] == "this API takes no request body (got 5000000 bytes)"
        response = await client.get("/deals/a", headers=AUTH, data=b"")
        assert response.status == 200
        # Beyond aiohttp's limits (8190 bytes a line) the parser answers 400 before any handler.
        assert (await client.get("/deals/" + "a" * 9000, headers=AUTH)).status == 400
        assert (await client.get("/deals/a", headers={**AUTH, "X-Big": "b" * 9000})).status == 400


@pytest.fixture
def forecast_floor(floor: Harness) -> Harness:
    """The floor and bob's open deal e: 2,000 EUR at proposal, expected to close on 28 March."""
    e = stage("e", "bob", at(-50), "proposal", "e1", amount=2000, currency="EUR", expected_close_date="2024-03-28")
    floor.deals_in(floor.message("crm.deal-stages", 1, "e", e))
    return floor


async def test_reports_carry_the_ratios_and_percentiles_next_to_their_parts(forecast_floor: Harness) -> None:
    """Today emea won deal a (5,000 EUR) and lost deal b: a win rate of 1 / 2. ann answered deal a in
    100 s: one observation in the (60, 300] bucket, so p50 = 60 + 240 x 0.5 and p90 = 60 + 240 x 0.9,
    as histogram_quantile has it. This month emea won 5,000 EUR (and 300 USD, not the quota's
    currency) of bob's 10,000 EUR quota: attainment 0.5. Bob's open deal e, 2,000 EUR at proposal
    (probability 0.5) expected to close this month, covers 2,000 of the 5,000 EUR left and makes the
    forecast 5,000 + 1,000: 0.6 of the month's quota, 0.2 of the quarter's."""
    async with serve(forecast_floor) as client:
        today = await get(client, "/teams/emea/metrics")
        assert today["ratios"]["win_rate"] == [{"labels": {}, "value": 0.5, "numerator": 1, "denominator": 2}]
        assert "quota_attainment" not in today["ratios"]  # a day has no quota
        (response,) = today["percentiles"]["leadpulse_first_response_seconds"]
        assert (response["p50"], response["p90"], response["count"]) == (180, 276, 1)
        assert today["percentiles"]["leadpulse_sales_cycle_seconds"][0]["p50"] is not None
        month = await get(client, "/teams/emea/metrics?period=month")
        assert row(month["ratios"]["quota_attainment"], currency="EUR") == {
            "labels": {"currency": "EUR"},
            "value": 0.5,
            "numerator": 5000,
            "denominator": 10000,
        }
        assert row(month["ratios"]["pipeline_coverage"], currency="EUR")["value"] == 2000 / 5000
        assert row(month["ratios"]["forecast_attainment"], currency="EUR")["value"] == 6000 / 10000
        quarter = await get(client, "/teams/emea/metrics?period=quarter&start=2024-01-01")
        assert row(quarter["ratios"]["quota_attainment"], currency="EUR")["denominator"] == 30000
        assert row(quarter["ratios"]["forecast_attainment"], currency="EUR") == {
            "labels": {"currency": "EUR"},
            "value": 6000 / 30000,
            "numerator": 6000,
            "denominator": 30000,
        }
        nobody = await get(client, "/reps/ann/metrics?period=day&start=2024-03-01")
        assert nobody["ratios"]["win_rate"][0]["value"] is None  # nothing closed: nothing to divide
