"""Scatter-gather across the workers of the group.

How a worker finds the others: each announces its web URL (``LEADPULSE_WEB_URL``, Faust's
``canonical_url``) in its consumer-group membership metadata; the group leader's assignment
gives every member the map *URL -> partitions* of every table's changelog (Faust's
``app.router.table_metadata``). The members that own deal partitions are the ones to ask; no
other registry exists or is needed.

A deal is answered by the worker owning its partition, found as Kafka's default partitioner
(murmur2, what producers must use: README) places the deal's key: one hop, Faust's table-routing
idea over the same membership map.

A gathered answer is whole only when every deal partition was answered exactly once. While a
rebalance moves partitions, a worker answers 503 (not ready), or two answers overlap or miss a
partition: the gatherer then fails with :class:`~streams.api.local.NotReady` (HTTP 503, retry)
rather than return sums with a partition missing or counted twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from aiokafka.partitioner import DefaultPartitioner

from streams.api.local import NotReady

PEER_TIMEOUT_SECONDS = 5.0
Members = Callable[[], Mapping[str, list[int]]]  # URL -> deal partitions it owns


class Gatherer:
    def __init__(self, members: Members, own_url: str, partitions: int, token: str | None) -> None:
        self.members = members
        self.own_url = own_url.rstrip("/")
        self.partitions = partitions
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    async def gather(self, path: str, query: Mapping[str, str], local: Callable[[], dict[str, Any]]) -> list[dict]:
        """Every member's answer to ``path`` (this worker's from ``local``), checked whole."""
        members = {url.rstrip("/"): partitions for url, partitions in self.members().items()}
        if not members:
            raise NotReady("the group has not assigned the partitions yet")
        answers = await asyncio.gather(
            *(self._local(local) if url == self.own_url else self._ask(url, path, query) for url in sorted(members))
        )
        if self.own_url not in members:  # owns no deal partition now, or the map is from before a rebalance
            answers.append(self._local_or_none(local))
        self._check_whole([answer for answer in answers if answer is not None])
        return [answer for answer in answers if answer is not None]

    def partition_of(self, key: bytes) -> int:
        """The partition Kafka's default partitioner gives ``key``."""
        return DefaultPartitioner()(key, list(range(self.partitions)), [])

    async def ask_owner(self, partition: int, path: str, local: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The answer of the worker that owns ``partition`` (this one's from ``local``)."""
        owners = [url.rstrip("/") for url, partitions in self.members().items() if partition in partitions]
        if len(owners) != 1:
            raise NotReady(f"a rebalance is under way (partition {partition} has no owner); retry shortly")
        owner = owners[0]
        answer = await (self._local(local) if owner == self.own_url else self._ask(owner, path, {}))
        if partition not in answer["partitions"]:
            raise NotReady(f"a rebalance is under way (partition {partition} is moving); retry shortly")
        return answer

    @staticmethod
    async def _local(local: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return local()

    @staticmethod
    def _local_or_none(local: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        answer = local()
        return answer if answer["partitions"] else None

    def _check_whole(self, answers: list[dict[str, Any]]) -> None:
        seen = Counter(partition for answer in answers for partition in answer["partitions"])
        missing = sorted(set(range(self.partitions)) - set(seen))
        twice = sorted(partition for partition, count in seen.items() if count > 1)
        if missing or twice:
            detail = f"partitions {missing} unanswered" if missing else f"partitions {twice} answered twice"
            raise NotReady(f"a rebalance is under way ({detail}); retry shortly")

    async def _ask(self, url: str, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        session = self._session_now()
        try:
            async with session.get(f"{url}{path}", params=dict(query), headers=self.headers) as response:
                if response.status == 503:
                    raise NotReady(f"worker {url} is rebalancing; retry shortly")
                if response.status != 200:
                    text = (await response.text())[:200]
                    raise NotReady(f"worker {url} answered {response.status}: {text}")
                return await response.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise NotReady(f"worker {url} did not answer ({type(exc).__name__}); retry shortly") from None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def segment(text: str) -> str:
    """A path parameter, quoted for a URL (names may hold any character)."""
    return quote(text, safe="")
