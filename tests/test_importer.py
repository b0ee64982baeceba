"""``leadpulse import``: readable lines are sent as they are, unreadable ones reported by number.

The broker test imports a shuffled, messy export into one broker and produces the same records
live into another: both workers end with the same metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.importer.lines import ExportRecord, Unreadable, parse_line
from streams.kafka.broker import EmbeddedBroker
from tests.dataset import build
from tests.harness import CATALOG_SAMPLES, SPEC_SAMPLES, WorkerProcess, produce, select, settled_pair, total, wait_until

TOPICS = {"crm.calls", "crm.reps"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"key": "d", "value": "{}"}', "topic is missing"),
        (b'{"topic": "crm.nope", "key": "d", "value": "{}"}', "is not one LeadPulse reads"),
        (b'{"topic": "crm.calls", "key": 5, "value": "{}"}', "key must be a string or null"),
        (b'{"topic": "crm.calls", "key": "d"}', "value is missing"),
        (b'{"topic": "crm.calls", "key": "d", "value": 12}', "value must be the message text"),
        (b'{"topic": "crm.calls", "key": "d", "value": "\xff\xfe"}', "not JSON"),
    ],
)
def test_unreadable_lines_say_why(line: bytes, reason: str) -> None:
    result = parse_line(7, line, TOPICS)
    assert isinstance(result, Unreadable) and result.line == 7 and reason in result.reason


def test_readable_lines_keep_the_raw_value() -> None:
    raw = '{"event_id": 1, "broken": tru'  # a malformed event is the engine's to dead-letter
    line = json.dumps({"topic": "crm.calls", "key": "d1", "value": raw}).encode()
    assert parse_line(1, line, TOPICS) == ExportRecord("crm.calls", b"d1", raw.encode())
    as_object = b'{"topic": "crm.reps", "key": null, "value": {"rep_id": "ann"}}'
    assert parse_line(2, as_object, TOPICS) == ExportRecord("crm.reps", None, b'{"rep_id":"ann"}')
    assert parse_line(3, b"   \n", TOPICS) is None


def _is_text(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def import_file(bootstrap: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEADPULSE_BROKER": bootstrap}
    command = [sys.executable, "-m", "streams.cli", "import", str(path), "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_an_import_gives_the_metrics_of_the_same_records_arriving_live(broker: EmbeddedBroker, tmp_path: Path) -> None:
    data = build(time.time(), random_deals=40)
    text = [(topic, key, value) for topic, key, value in data.messages if _is_text(value)]  # an export holds text
    records = [*text, *text[5:25]]  # some lines twice: the same message sent again
    lines = [json.dumps({"topic": t, "key": k and k.decode(), "value": v.decode()}).encode() for t, k, v in records]
    unreadable = {3: b"not json at all", 10: b'{"topic": "crm.nope", "key": null, "value": "{}"}', 20: b"\xff\xfe"}
    for number in sorted(unreadable):  # 1-based line numbers in the final file
        lines.insert(number - 1, unreadable[number])
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")

    with EmbeddedBroker(log_path=tmp_path / "live-tansu.log") as live_broker:
        imported = WorkerProcess(broker.bootstrap, "imported", tmp_path / "imported").start()
        live = WorkerProcess(live_broker.bootstrap, "live", tmp_path / "live").start()
        try:
            result = import_file(broker.bootstrap, export)
            asyncio.run(produce(live_broker.bootstrap, records))
            for worker in (imported, live):
                wait_until(
                    lambda w=worker: total(w.scrape(), "leadpulse_events_processed_total") == len(records),
                    90,
                    f"{worker.app_id} to process all {len(records)} messages",
                )
            compared = [*SPEC_SAMPLES, *CATALOG_SAMPLES, "leadpulse_events_rejected_total"]
            expected, actual = settled_pair(live, imported, compared)
        finally:
            imported.stop()
            live.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sent {len(records):,} messages" in result.stdout
    for number in unreadable:
        assert f"line {number}: " in result.stdout
    assert "3 unreadable line(s)" in result.stdout
    for name in compared:
        assert select(actual, name) == pytest.approx(select(expected, name)), name
    assert total(actual, "leadpulse_events_rejected_total") >= len(data.bad) - 1  # all but the invalid UTF-8 one


@pytest.mark.integration
def test_a_file_with_nothing_to_send_exits_non_zero(broker: EmbeddedBroker, tmp_path: Path) -> None:
    export = tmp_path / "junk.jsonl"
    export.write_bytes(b"junk\n[]\n")
    result = import_file(broker.bootstrap, export)
    assert result.returncode == 1 and "2 unreadable line(s)" in result.stdout and "sent 0 messages" in result.stdout
