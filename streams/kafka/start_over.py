"""Starting the worker over from what the broker holds: a new process image, the same PID.

For when this worker's state is no longer backed by the broker: the broker lost its data (it
came back empty, or the topics were deleted and recreated), or the embedded broker exited (it
keeps nothing). Its tables would then be served as fresh while no restart could rebuild them,
and the offsets they carry would make it skip the new broker's events as redeliveries.

Everything a process holds goes at once: tables, aggregates, the offsets Faust keeps in its
consumer, its recovery service and its stores, the group membership. The RocksDB store is
removed first: Faust trusts a store whose changelog offset is past the changelog's end and
skips recovery. The new image finds no state, so nothing makes it start over again unless the
broker loses data again: no crash loop, and no supervisor needed. Resetting those in place was
not chosen: missing one of Faust's offsets skips records silently.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import NoReturn

log = logging.getLogger(__name__)

STARTS_VARIABLE = "LEADPULSE_STARTED_OVER"  # how many times this process started over, for its logs
DISCARD_VARIABLE = "LEADPULSE_DISCARD_RECOVERED"  # set for the new image: see discard_what_recovery_finds
_cleanups: list[Callable[[], None]] = []


def before_starting_over(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` before the process image is replaced (a child to stop, say)."""
    _cleanups.append(cleanup)


def times_started_over() -> int:
    return int(os.environ.get(STARTS_VARIABLE, "0") or 0)


def discard_what_recovery_finds() -> bool:
    """True once after a start over: what the first recovery then reads from the changelogs was
    written before it. Writes the old image had queued while the broker was away reach the new
    broker when it answers (the producer retries them), so the changelogs may hold some even on a
    broker that came back empty: :class:`streams.kafka.broker_loss.BrokerLossCheck` deletes them when they
    are ahead of the broker."""
    return os.environ.pop(DISCARD_VARIABLE, None) is not None


def start_over(why: str, *, wipe: Path | None = None) -> NoReturn:
    """Say why, remove ``wipe`` (the table store), and run this command again in this process."""
    log.error(
        "%s. This worker's state is not backed by the broker any more: starting over from what the"
        " broker holds (the figures begin again from its events; not ready until recovered)",
        why,
    )
    for cleanup in reversed(_cleanups):
        with suppress(Exception):
            cleanup()
    if wipe is not None:
        _remove(wipe)
    for handler in logging.getLogger().handlers:
        with suppress(Exception):
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[STARTS_VARIABLE] = str(times_started_over() + 1)
    os.environ[DISCARD_VARIABLE] = "1"
    os.execv(sys.executable, sys.orig_argv)


def _remove(store: Path) -> None:
    """Move the store aside first (atomic: the new image finds none, whatever RocksDB's background
    threads still write into the old one), then delete it and any left by an earlier start over."""
    if store.exists():
        store.rename(store.with_name(f"{store.name}.discarded-{os.getpid()}-{times_started_over()}"))
    for discarded in store.parent.glob(f"{store.name}.discarded-*"):
        shutil.rmtree(discarded, ignore_errors=True)
