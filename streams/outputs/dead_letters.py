"""Sending dead letters, retried in place while the dead-letter topic does not take them.

A bad event is never dropped. While its dead letter cannot be sent, its delivery stays pending,
and the flush that awaits it holds back every changelog write and input commit after it: a
restart redelivers the bad event and everything behind it. Good events go on being counted
meanwhile (their figures depend on nothing the dead-letter topic holds), so the worker stays
ready. The outage is logged when it starts and when it ends, and ``leadpulse_dead_letters_waiting``
counts the dead letters waiting. A stopping worker gives up at the next failure: the flush fails
and nothing past the bad event is committed.

An attempt that hangs (aiokafka waits for an unknown topic's metadata for the whole request
timeout, 20 minutes under Faust) is abandoned after ``attempt_seconds`` and retried: if the first
attempt reaches the topic after all, the dead letter is there twice (at-least-once, like every
output; readers key dead letters by topic, partition and offset). An error that retrying cannot
cure (the worker may not write the topic) is retried all the same, and said again every five
minutes: exiting would only make a supervisor restart the worker into the same error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Send = Callable[[bytes | None, bytes], Awaitable[object]]  # key, value -> once acknowledged
STOP_POLL_SECONDS = 0.25
STILL_FAILING_SAID_EVERY_SECONDS = 300.0  # a permanent error (authorization, say) is retried, and said again


class DeadLetterSender:
    def __init__(
        self,
        send: Send,
        *,
        topic: str,
        stopping: Callable[[], bool],
        attempt_seconds: float = 15.0,
        first_retry_seconds: float = 0.5,
        max_retry_seconds: float = 15.0,
    ) -> None:
        self._send = send
        self.topic = topic
        self._stopping = stopping
        self.attempt_seconds = attempt_seconds
        self.first_retry_seconds = first_retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.waiting = 0  # dead letters sent or retrying, not yet acknowledged
        self._failing_since: float | None = None
        self._last_said = 0.0

    async def send(self, key: bytes | None, value: bytes) -> object:
        """The acknowledgement, once the topic takes the record (however long that is)."""
        self.waiting += 1
        try:
            delay = self.first_retry_seconds
            while True:
                try:
                    acknowledged = await asyncio.wait_for(self._send(key, value), self.attempt_seconds)
                except Exception as exc:  # whatever the producer raises, the record waits
                    if self._stopping():
                        raise
                    self._failed(exc)
                    if await self._stopped_within(delay):
                        raise
                    delay = min(delay * 2, self.max_retry_seconds)
                    continue
                self._succeeded()
                return acknowledged
        finally:
            self.waiting -= 1

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as the worker is stopping (it must not wait out a backoff)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping():
                return True
            await asyncio.sleep(min(left, STOP_POLL_SECONDS))
        return self._stopping()

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is not None and now - self._last_said >= STILL_FAILING_SAID_EVERY_SECONDS:
            self._last_said = now
            log.error(
                "the dead-letter topic %s still does not take records, after %.0f s (%d dead letters wait; %s)",
                self.topic,
                now - self._failing_since,
                self.waiting,
                _described(exc),
            )
        if self._failing_since is None:
            self._failing_since = self._last_said = now
            log.error(
                "the dead-letter topic %s does not take records (%s): the bad events wait and are retried,"
                " and no input offset after them is committed until it does",
                self.topic,
                _described(exc),
            )

    def _succeeded(self) -> None:
        if self._failing_since is not None:
            log.warning(
                "the dead-letter topic %s takes records again, after %.0f s (%d dead letters were waiting)",
                self.topic,
                time.monotonic() - self._failing_since,
                self.waiting,
            )
            self._failing_since = None


def _described(exc: Exception) -> str:
    """``KafkaTimeoutError: ...`` once (aiokafka's messages already start with the class name)."""
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
