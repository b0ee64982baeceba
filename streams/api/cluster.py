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
from yarl import URL

from streams.api.local import NotReady

PEER_TIMEOUT_SECONDS = 5.0
Members = Callable[[], Mapping[str, list[int]]]  # URL -> deal partitions it owns
Local = Callable[[], dict[str, Any]]


def identity(url: str) -> tuple[str, int]:
    """(host, port) of a worker URL, the way Faust's router compares them: Faust keeps member URLs
    normalised (host lower-cased, a default port dropped), so raw strings may differ."""
    parsed = URL(url)
    return (parsed.host or "").lower(), parsed.port or 80


class Gatherer:
    def __init__(self, members: Members, own_url: str, partitions: int, token: str | None) -> None:
        self.members = members
        self.own = identity(own_url)
        self.partitions = partitions
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _by_worker(self) -> dict[str, list[int]]:
        members = {str(url).rstrip("/"): list(partitions) for url, partitions in self.members().items()}
        if not members:
            raise NotReady("the group has not assigned the partitions yet")
        return members

    async def gather(self, path: str, query: Mapping[str, str], local: Local) -> list[dict[str, Any]]:
        """Every member's answer to ``path`` (this worker's from ``local``), checked whole."""
        members = self._by_worker()
        answers: list[dict[str, Any]] = await asyncio.gather(
            *(self._answer(url, path, query, local) for url in sorted(members))
        )
        if self.own not in {identity(url) for url in members}:
            # Owns no deal partition now, or the map predates the rebalance this worker just finished.
            mine = local()
            if mine["partitions"]:
                answers.append(mine)
        self._check_whole(answers)
        return answers

    def partition_of(self, key: bytes) -> int:
        """The partition Kafka's default partitioner gives ``key``."""
        return DefaultPartitioner()(key, list(range(self.partitions)), [])

    async def ask_owner(self, partition: int, path: str, local: Local) -> dict[str, Any]:
        """The answer of the worker that owns ``partition`` (this one's from ``local``)."""
        owners = [url for url, partitions in self._by_worker().items() if partition in partitions]
        if len(owners) != 1:
            raise NotReady(f"a rebalance is under way (partition {partition} has no owner); retry shortly")
        answer = await self._answer(owners[0], path, {}, local)
        if partition not in answer["partitions"]:
            raise NotReady(f"a rebalance is under way (partition {partition} is moving); retry shortly")
        return answer

    async def _answer(self, url: str, path: str, query: Mapping[str, str], local: Local) -> dict[str, Any]:
        if identity(url) == self.own:
            return local()
        return await self._ask(url, path, query)

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
                answer = await response.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise NotReady(f"worker {url} did not answer ({type(exc).__name__}); retry shortly") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("partitions"), list):
            raise NotReady(f"worker {url} answered something else than its part (another version?)")
        return answer

    def _session_now(self) -> aiohttp.ClientSession:
        if self._closed:
            raise NotReady("this worker is shutting down")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS))
        return self._session

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


def segment(text: str) -> str:
    """A path parameter, quoted for a URL (names may hold any character)."""
    return quote(text, safe="")
