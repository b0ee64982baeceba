"""Hostile input at scale: every message that breaks a rule is dead-lettered with a reason that
rule allows, the good events in between count exactly, and nothing crashes.

The decoder first, in-process, on thousands of hostile messages (a hypothesis property); then a
real worker on a real broker, 10,000 hostile messages and good events between them."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import InputTopic
from streams.ingest.decode import Rejection, decode
from streams.kafka.broker import EmbeddedBroker, free_port
from tests.harness import WorkerProcess, read_topic, total, wait_until
from tests.hostile import CALLS, DEALS, Hostile, call, encoded, hostile
from tests.test_api_http import SELF, TOKEN, floor, worker_app  # noqa: F401 - floor: the fixture
from tests.test_catalog import scenario  # noqa: F401 - the fixture floor uses
from tests.test_processor_and_collector import Harness

TOPIC_OF = {CALLS: InputTopic.CALLS}
BATCHES, BATCH_HOSTILE, BATCH_GOOD = 50, 200, 20  # 10,000 hostile messages, 1,000 good ones


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_the_decoder_rejects_every_hostile_message_with_an_allowed_reason(message: Hostile) -> None:
    result = decode(TOPIC_OF[message.topic], message.key, message.value, now=time.time(), max_future_skew_seconds=300)
    assert isinstance(result, Rejection), (message.kind, result)
    assert result.reason in message.reasons, (message.kind, result)


@pytest.mark.integration
def test_ten_thousand_hostile_messages_are_dead_lettered_and_the_good_ones_count_exactly(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker.bootstrap, "fuzz", tmp_path / "worker").start()
    sent: dict[tuple[int, int], Hostile] = {}  # (partition, offset) of each hostile message
    good: Counter[str] = Counter()  # good calls per deal
    batches = 0

    @settings(
        max_examples=BATCHES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(hostile(), min_size=BATCH_HOSTILE, max_size=BATCH_HOSTILE))
    def one_batch(messages: list[Hostile]) -> None:
        nonlocal batches
        goods = [call(DEALS[n % len(DEALS)], f"good-{batches}-{n}") for n in range(BATCH_GOOD)]
        placed = asyncio.run(produce_between(broker.bootstrap, messages, list(goods)))
        sent.update(placed)
        good.update(value["deal_id"] for value in goods)
        batches += 1
        expected = len(sent) + sum(good.values())
        wait_until(
            lambda: total(worker.scrape(), "leadpulse_events_processed_total") == expected,
            60,
            f"{expected} messages processed after batch {batches}",
        )

    try:
        one_batch()
        figures = worker.scrape()
        assert worker.process is not None and worker.process.poll() is None, "the worker exited"
    finally:
        worker.stop()
    assert len(sent) >= 10_000
    assert total(figures, "leadpulse_events_rejected_total") == len(sent)
    assert total(figures, "leadpulse_calls_total") == sum(good.values())
    assert total(figures, "leadpulse_events_duplicate_total") == 0
    assert sum(good.values()) == batches * BATCH_GOOD
    letters = asyncio.run(read_topic(broker.bootstrap, "leadpulse.dead-letter", timeout=120))
    assert len(letters) == len(sent), "each hostile message is dead-lettered once"
    wrong = []
    for letter in letters:
        record = json.loads(letter.value)
        message = sent[(record["partition"], record["offset"])]
        if record["reason"] not in message.reasons or record["topic"] != message.topic:
            wrong.append((message.kind, record["reason"], record["detail"]))
        assert record["value_bytes"] == len(message.value or b"")
    assert not wrong, wrong[:10]
    log = (worker.data_dir / "worker.log").read_text()
    assert "ERROR" not in log and "CRITICAL" not in log
    assert Counter(message.kind for message in sent.values())["megabyte"] > 0


async def produce_between(bootstrap: str, messages: list[Hostile], goods: list[dict]) -> dict[tuple[int, int], Hostile]:
    """Produce the hostile messages with the good events spread between them; returns where each
    hostile one landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4 << 20)
    await producer.start()
    try:
        every = max(1, len(messages) // max(1, len(goods)))
        pending = []
        for number, message in enumerate(messages):
            pending.append((message, await producer.send(message.topic, message.value, key=message.key)))
            if number % every == 0 and goods:
                value = goods.pop()
                await producer.send(CALLS, encoded(value), key=value["deal_id"].encode())
        for value in goods:
            await producer.send(CALLS, encoded(value), key=value["deal_id"].encode())
        await producer.flush()
        return {((metadata := await future).partition, metadata.offset): message for message, future in pending}
    finally:
        await producer.stop()


class ServedInThread:
    """An aiohttp application on a loopback port, served by its own event loop in a thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServedInThread:
        self.thread.start()
        self.runner = web.AppRunner(self.app)
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


ROUTE_PREFIXES = ["/", "/deals/", "/reps/", "/teams/", "/internal/reports/rep/", "/internal/awaiting/", "/health/"]
segments = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40).map(
    lambda text: quote(text, safe=":@!$&'()*+,;=")
)
queries = st.dictionaries(
    st.sampled_from(["period", "start", "limit", "kind", "label", "x", ""]),
    st.text(max_size=30),
    max_size=4,
).map(lambda params: "?" + urlencode(params) if params else "")
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,30}", fullmatch=True).filter(
    lambda name: name.lower() not in {"content-length", "transfer-encoding", "host", "connection"}
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_hostile_http_requests_get_a_4xx_never_a_5xx_nor_the_token(
    floor: Harness,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bad paths, parameters, methods, bodies and headers: every answer is below 500, every JSON
    error says what is wrong, and the token is never echoed or logged."""
    app, _gatherer = worker_app(floor, token=TOKEN, owned=lambda: frozenset({0, 1}), members=lambda: {SELF: [0, 1]})
    answered: Counter[int] = Counter()
    with ServedInThread(app) as served:

        @settings(max_examples=600, deadline=None, derandomize=True, database=None)
        @given(
            method=st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"]),
            path=st.tuples(st.sampled_from(ROUTE_PREFIXES), segments, st.sampled_from(["", "/metrics", "/x"])),
            query=queries,
            headers=st.dictionaries(header_names, header_values, max_size=5),
            authorization=st.sampled_from([None, f"Bearer {TOKEN}", "Bearer wrong", TOKEN, "Basic Zm9vOmJhcg=="]),
            body=st.one_of(st.none(), st.binary(max_size=2048)),
        )
        def one_request(
            method: str,
            path: tuple[str, str, str],
            query: str,
            headers: dict[str, str],
            authorization: str | None,
            body: bytes | None,
        ) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
            try:
                if authorization is not None:
                    headers = {**headers, "Authorization": authorization}
                connection.request(method, "".join(path) + query, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            answered[response.status] += 1
            assert response.status < 500, (method, path, query, payload[:300])
            assert TOKEN.encode() not in payload
            json_error = response.getheader("Content-Type", "").startswith("application/json")
            if response.status >= 400 and json_error and method != "HEAD":  # HEAD answers carry no body
                assert json.loads(payload)["error"]

        one_request()
    assert TOKEN not in caplog.text
    assert sum(answered.values()) >= 500 and answered[200] > 0 and answered[401] > 0 and answered[404] > 0
