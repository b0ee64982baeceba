"""Faust ``stream.take()`` with no work: Faust's per-event path alone (values decoded, nothing kept).

Values are decoded in the agent, not by ``value_serializer="json"``: the simulated input holds
malformed values, and with the json codec the agent stopped for good at the first one (no error
logged; the decode error ends ``take()``'s background drainer).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import faust
import orjson

from bench.consumers import BATCH, DEAL_TOPICS, faust_settings, run_faust


def main() -> None:
    bootstrap, group, datadir = sys.argv[1:4]
    Path(datadir).mkdir(parents=True, exist_ok=True)
    app = faust.App(group, **faust_settings(bootstrap, datadir))
    topic = app.topic(*DEAL_TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(topic)
    async def take_batches(stream: faust.StreamT) -> None:
        async for batch in stream.take(BATCH, within=1):
            for value in batch:
                with contextlib.suppress(orjson.JSONDecodeError):
                    orjson.loads(value)

    run_faust(app)


if __name__ == "__main__":
    main()
