"""Two workers in one group, with an API token: each exports the partitions it owns and their
slices add up exactly; every API route answers the same from either worker (deals routed,
reports and waiting leads gathered) and equals the reference model; schemathesis finds no 5xx
and no response off its schema."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streams.api.openapi import ROUTES
from streams.kafka.broker import EmbeddedBroker
from streams.metrics.report import labels_shown, reported_specs
from streams.metrics.spec import Kind, Scope
from tests.dataset import MOVER, REPS, SLA_BY_SOURCE, Dataset, build
from tests.harness import (
    CATALOG_SAMPLES,
    SPEC_SAMPLES,
    WorkerProcess,
    get_json,
    get_status,
    produce,
    select,
    total,
    wait_until,
)
from tests.reference import expected_metrics, in_metrics
from tests.test_broker_exact_values import assert_family

pytestmark = pytest.mark.integration

TOKEN = "pair-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MOVING = {"leadpulse_lead_oldest_awaiting_seconds"}  # an age: grows with the clock between reads


@dataclass
class Pair:
    workers: list[WorkerProcess]
    data: Dataset
    sent: int

    def expected(self, now: float) -> dict:
        return expected_metrics(
            profiles=self.data.profiles,
            events=self.data.events,
            now=now,
            sla_default=300.0,
            sla_by_source=SLA_BY_SOURCE,
        )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("pair")
    with EmbeddedBroker(log_path=tmp / "tansu.log") as broker:
        data = build(time.time())
        env = {"LEADPULSE_SLA_BY_SOURCE": json.dumps(SLA_BY_SOURCE), "LEADPULSE_API_TOKEN": TOKEN}
        workers = [WorkerProcess(broker.bootstrap, "pair", tmp / f"worker-{n}", extra_env=env) for n in (1, 2)]
        try:
            for worker in workers:
                worker.start()
            # The second member's join rebalances the first: wait until both are ready again.
            wait_until(lambda: all(worker.ready() for worker in workers), 60, "both workers ready")
            sent = asyncio.run(produce(broker.bootstrap, data.messages))
            wait_until(
                lambda: sum(total(worker.scrape(), "leadpulse_events_processed_total") for worker in workers) == sent,
                90,
                f"all {sent} messages processed by the pair",
            )
            yield Pair(workers, data, sent)
        finally:
            for worker in workers:
                worker.stop()


def scrape_pair(workers: list[WorkerProcess]) -> tuple[dict, float, list[dict]]:
    """Both workers' samples combined (sums; max for ages), the scrape time, and each slice."""
    while True:  # avoid a scrape that straddles an hour boundary
        before = time.time()
        slices = [worker.scrape() for worker in workers]
        scraped_at = time.time()
        if int(before // 3600) == int(scraped_at // 3600):
            break
    combined: dict = defaultdict(float)
    for samples in slices:
        for (name, labels), value in samples.items():
            if name in ("leadpulse_lead_oldest_awaiting_seconds", "leadpulse_last_event_timestamp_seconds"):
                combined[(name, labels)] = max(combined[(name, labels)], value)
            else:
                combined[(name, labels)] += value
    return combined, scraped_at, slices


def check(actual: dict, expected: dict) -> None:
    for name in [*SPEC_SAMPLES, *CATALOG_SAMPLES]:
        if name.endswith("_bucket"):  # the engine exports every bucket, zeros included
            for labels in select(actual, name):
                expected.setdefault((name, labels), 0.0)
        assert_family(actual, expected, name)


def test_two_workers_split_the_partitions_and_their_slices_add_up(pair: Pair) -> None:
    # Rep profiles reach the other worker through the global table's changelog a moment later.
    deadline = time.monotonic() + 60
    while True:
        combined, scraped_at, slices = scrape_pair(pair.workers)
        try:
            check(combined, in_metrics(pair.expected(scraped_at)))
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert all(total(samples, "leadpulse_table_keys") > 0 for samples in slices), "one worker owns no partition"


# The API: the same answer from either worker, equal to the reference model.


def report_from_samples(expected: dict, subject: str, name: str) -> dict[str, dict[tuple, Any]]:
    """A rep's or team's figures today as the reference model's samples give them, summed onto
    the labels the API keeps: {metric: {labels: value or (count, sum, cumulative buckets)}}."""
    out: dict[str, dict[tuple, Any]] = {}
    for spec in reported_specs():
        if spec.name in MOVING:
            continue
        keep = labels_shown(spec)
        periodic = spec.scope in (Scope.PERIOD, Scope.PREVIOUS_PERIOD)
        rows: dict[tuple, Any] = {}
        names = {f"{spec.name}_{part}" for part in ("count", "sum", "bucket")} | set(spec.exposed_names)
        for (sample, labels), value in expected.items():
            labels = dict(labels)
            if sample not in names or labels.get(subject) != name or (periodic and labels.get("period") != "day"):
                continue
            key = tuple(labels[label] for label in keep if label != "le")
            if spec.kind is Kind.HISTOGRAM:
                count, total_, buckets = rows.get(key, (0, 0.0, {}))
                if sample == f"{spec.name}_count":
                    count += value
                elif sample == f"{spec.name}_sum":
                    total_ += value
                elif sample == f"{spec.name}_bucket":
                    buckets = {**buckets, labels["le"]: buckets.get(labels["le"], 0) + value}
                else:
                    continue
                rows[key] = (count, total_, buckets)
            elif sample in spec.exposed_names:
                rows[key] = rows.get(key, 0) + value
        out[spec.name] = rows
    return out


def report_from_api(body: dict) -> dict[str, dict[tuple, Any]]:
    out: dict[str, dict[tuple, Any]] = {}
    for spec in reported_specs():
        if spec.name in MOVING:
            continue
        keep = labels_shown(spec)
        rows: dict[tuple, Any] = {}
        for row in body["metrics"].get(spec.name, []):
            key = tuple(row["labels"][label] for label in keep)
            if spec.kind is Kind.HISTOGRAM:
                rows[key] = (row["count"], row["sum"], {le: n for le, n in row["buckets"].items() if n})
            elif row["value"]:
                rows[key] = row["value"]
        out[spec.name] = rows
    return out


def comparable(report: dict[str, dict[tuple, Any]]) -> dict[str, dict[tuple, Any]]:
    """Zeros dropped (the API lists a figure where the engine has a cell; the model where it
    counted), values rounded to the millisecond (event times have that precision; the model sums
    floats)."""
    out = {}
    for metric, rows in report.items():
        kept = {}
        for key, value in rows.items():
            if isinstance(value, tuple):
                count, total_, buckets = value
                if count:
                    kept[key] = (count, round(total_, 3), {le: n for le, n in buckets.items() if n})
            elif value:
                kept[key] = round(value, 3)
        out[metric] = kept
    return out


def settled(pair: Pair, path: str, moving: set[str]) -> tuple[Any, Any, float]:
    """The route's answer from worker 1, then 2, then 1 again, accepted when worker 1's answer did
    not move in between (a lead crossing its SLA, an hour ending): then both saw the same moment."""
    first, second = pair.workers
    for _ in range(20):
        before = strip(get_json(first.url + path, AUTH), moving)
        at = time.time()
        other = get_json(second.url + path, AUTH)
        after = strip(get_json(first.url + path, AUTH), moving)
        if before == after:
            return before, other, at
    raise AssertionError(f"{path} kept moving")


def strip(body: Any, moving: set[str]) -> Any:
    """The body without the figures that move with the clock every instant (ages, read time)."""
    if isinstance(body, dict):
        return {key: strip(value, moving) for key, value in body.items() if key not in moving}
    if isinstance(body, list):
        return [strip(item, moving) for item in body]
    return body


def test_every_route_answers_the_same_from_either_worker_and_equals_the_reference(pair: Pair) -> None:
    # The profile figures need each worker to hold every profile: wait for the global table.
    wait_until(
        lambda: all(len(get_json(worker.url + "/teams", AUTH)["teams"]) == 3 for worker in pair.workers),
        60,
        "both workers hold every rep's profile",
    )
    for subject, names in (("reps", [*REPS, MOVER]), ("teams", ["emea", "americas", "apac"])):
        for name in names:
            path = f"/{subject}/{name}/metrics"
            body, other, at = settled(pair, path, MOVING)
            assert strip(other, MOVING) == body, path
            expected = comparable(report_from_samples(pair.expected(at), subject[:-1], name))
            actual = comparable(report_from_api(body))
            if subject == "reps":  # /metrics has these per team only: the model has no rep's share
                for spec in reported_specs():
                    if spec.sources and "rep" not in spec.labels:
                        del expected[spec.name], actual[spec.name]
            assert actual == expected, path
    for team in ("emea", "americas", "apac"):
        path = f"/teams/{team}/awaiting"
        body, other, at = settled(pair, path, {"at", "waiting_seconds", "oldest_waiting_seconds"})
        assert strip(other, {"at", "waiting_seconds", "oldest_waiting_seconds"}) == body, path
        expected = pair.expected(at)
        assert body["total"] == sum(
            value
            for (name, labels), value in expected.items()
            if name == "leadpulse_leads_awaiting_response" and dict(labels)["team"] == team
        )
        created = [lead["created_at"] for lead in body["leads"]]
        assert created == sorted(created), "oldest first"
    for deal, stages, activities in deals_of(pair.data):
        path = f"/deals/{deal}"
        body, other, _ = settled(pair, path, {"sla"})
        assert strip(other, {"sla"}) == body, path
        latest = max(stages, key=lambda event: event["occurred_at"])
        assert (body["stage"], body["owner"]) == (latest["stage"], latest["rep_id"]), path
        assert (body["stage_events"], body["activities"]) == (len(stages), activities), path


def deals_of(data: Dataset) -> Iterator[tuple[str, list[dict], int]]:
    """Each deal with stage events: its distinct stage events (one latest by time) and the
    number of its distinct activities."""
    stages: dict[str, dict[str, dict]] = defaultdict(dict)
    activities: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for topic, events in data.events.items():
        for event in events:
            if topic == "deal_stages":
                stages[event["deal_id"]][event["event_id"]] = event
            else:
                activities[event["deal_id"]].add((topic, event["event_id"]))
    for deal, by_id in sorted(stages.items()):
        times = sorted(event["occurred_at"] for event in by_id.values())
        if len(times) > 1 and times[-1] == times[-2]:
            continue  # two latest events at one instant: the order between them is the engine's rule
        yield deal, list(by_id.values()), len(activities[deal])


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_api_keeps_its_openapi_document(pair: Pair) -> None:
    """Generated requests to every documented operation (any deal, rep and team names, periods,
    dates and limits) sent to the other worker, so routed and gathered answers are covered: no
    5xx, every status documented, every body of its documented schema and content type.

    Driven through schemathesis' Python API: its pytest plugin reads a private attribute that
    pytest 9.2 removed (``request.node._nodeid``)."""
    schema = schemathesis.openapi.from_url(pair.workers[0].url + "/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.path for operation in operations} == {route.path for route in ROUTES}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: Any) -> None:
            case.call_and_validate(base_url=pair.workers[1].url, headers=AUTH, checks=CHECKS)

        conforms()


def test_faust_s_own_pages_are_not_served(pair: Pair) -> None:
    """Faust's /table pages would serve raw table values to anyone; /router, the group's URLs."""
    for path in ("/table/deals_by_id_v2/", "/router/", "/stats/"):
        status, body = get_status(pair.workers[0].url + path, AUTH)
        assert (status, body) == (404, {"error": f"Not Found: GET {path}"}), path
