"""``python -m tests.dlq_outage worker``: the LeadPulse CLI, with the dead-letter topic unavailable
for as long as the file named by ``LEADPULSE_TEST_DLQ_OUTAGE_FILE`` exists.

The fault is injected where Kafka would raise it: Faust's producer refuses a send to that topic
with aiokafka's ``KafkaTimeoutError``, what a send raises when a topic's metadata never arrives (the
topic deleted with auto-creation off, its partitions offline). Tansu cannot be made to refuse one
topic (it creates any topic a producer names), and a network fault would take every topic down.
Nothing of the worker is replaced: its own retry, logging, metrics and commit path run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaTimeoutError
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.cli import main
from streams.config import load_settings

OUTAGE_FILE = "LEADPULSE_TEST_DLQ_OUTAGE_FILE"


def install() -> None:
    flag = Path(os.environ[OUTAGE_FILE])
    topic = load_settings().topics.dead_letter
    send = faust_aiokafka.Producer.send

    async def send_unless_out(self: Any, topic_name: str, *args: Any, **kwargs: Any) -> Any:
        if topic_name == topic and flag.exists():
            raise KafkaTimeoutError(f"injected: {topic_name} is unavailable")
        return await send(self, topic_name, *args, **kwargs)

    faust_aiokafka.Producer.send = send_unless_out  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    sys.exit(main(sys.argv[1:]))
