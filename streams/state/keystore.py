"""The table protocol the input path writes through: bytes in, bytes out, durable at a flush.

:class:`streams.state.tables.BatchTable` implements it on Faust's changelog-backed tables;
:class:`DictKeyStore` in process, for tests and the series benchmark.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Protocol

Write = tuple[bytes, bytes | None, int]  # key, value (None deletes), source partition


class KeyStore(Protocol):
    """A table as the processors use it: bytes in, bytes out, writes placed in a partition."""

    def get(self, key: bytes) -> bytes | None: ...

    def get_from(self, key: bytes, partition: int) -> bytes | None:
        """The stored bytes of ``key``, looked for in ``partition`` first (where its events arrive)."""

    def put_many(self, writes: list[Write]) -> None:
        """Apply the writes: visible at once, durable at the next flush."""

    def cut(self) -> list[Write]:
        """The keys written since the last cut, with their values now."""

    async def durable(self, writes: list[Write]) -> None:
        """Send a cut to the changelog; return once acknowledged."""

    async def flush(self) -> None:
        """Send the keys written since the last flush to the changelog; return once acknowledged."""

    async def write_many(self, writes: list[Write]) -> None:
        """Apply the writes and return once they (and all earlier ones) are durable."""


def apply_writes(mapping: MutableMapping[bytes, bytes], writes: Sequence[Write]) -> None:
    """Writes applied to a plain mapping (a value of None deletes its key)."""
    for key, value, _partition in writes:
        if value is None:
            mapping.pop(key, None)
        else:
            mapping[key] = value


class DictKeyStore(dict[bytes, bytes]):
    """A :class:`KeyStore` with no changelog, for in-process runs (tests, the series benchmark)."""

    def get_from(self, key: bytes, partition: int) -> bytes | None:
        return self.get(key)

    def put_many(self, writes: list[Write]) -> None:
        apply_writes(self, writes)

    def cut(self) -> list[Write]:
        return []

    async def durable(self, writes: list[Write]) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def write_many(self, writes: list[Write]) -> None:
        self.put_many(writes)
