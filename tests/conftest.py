from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh Tansu broker per test (it starts in milliseconds), so tests share no topics."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as running:
        yield running
