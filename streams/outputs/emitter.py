"""Planning, publishing and scheduling what deals owe the output topics (Faust-free).

Batches plan the deals they change (:meth:`Outputs.plan`); the worker's timer calls
:meth:`Outputs.emit_due` for deals whose next SLA step or slip date has come, with no input
needed. Either way the records are queued at once and acknowledged before the deal records
that mark them sent are flushed to the changelog (:meth:`streams.ingest.processor.BatchProcessor.flush`,
:mod:`streams.fold.outputs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from streams.fold.contributions import DealView, FoldContext
from streams.fold.deals import DealState
from streams.fold.outputs import Plan, next_due, plan, record_json
from streams.ingest.processor import YIELD_EVERY_DEALS
from streams.outputs.schedule import AlertSchedule
from streams.state.codec import decode_deal, encode_deal
from streams.state.keystore import KeyStore, Write

Record = tuple[str, bytes, bytes]  # topic, key, value
Send = Callable[[list[Record]], Awaitable[list[Awaitable[object]]]]  # queue in order; acknowledgements

EMIT_AT_MOST = 2000  # deals planned per timer tick


class Outputs:
    def __init__(
        self,
        ctx: FoldContext,
        *,
        alerts_topic: str,
        responses_topic: str,
        lookback_seconds: float,
        send: Send,
        resized: Callable[[int, int, int], object] | None = None,
    ) -> None:
        self.ctx = ctx
        self.alerts_topic = alerts_topic
        self.responses_topic = responses_topic
        self.lookback_seconds = lookback_seconds
        self.send_records = send
        self.resized = resized  # (partition, old bytes, new bytes) of a deal record the timer rewrote
        self.schedule = AlertSchedule()

    def plan(
        self, partition: int, state: DealState, now: float, view: DealView | None = None, response_moved: bool = True
    ) -> Plan:
        """What the deal owes now (its state marks it sent), and when it next will owe more
        (``view`` and ``response_moved``: :func:`streams.fold.outputs.plan`)."""
        view = view or DealView(state)
        owed = plan(state, self.ctx, now, self.lookback_seconds, view, response_moved)
        self.schedule.set(state.deal_id, partition, next_due(owed.state, self.ctx, now, view))
        return owed

    def reschedule(self, partition: int, state: DealState, now: float, view: DealView | None = None) -> None:
        """After a rebuild or a profile change: due now when the deal owes something, else at its
        next step. ``view`` is the state's :class:`DealView` when the caller has one."""
        view = view or DealView(state)
        owed = plan(state, self.ctx, now, self.lookback_seconds, view).owed
        self.schedule.set(state.deal_id, partition, now if owed else next_due(state, self.ctx, now, view))

    async def send(self, plans: Sequence[Plan]) -> list[Awaitable[object]]:
        """Queue the plans' records, in order; returns their acknowledgements to await."""
        records: list[Record] = []
        for owed in plans:
            key = owed.state.deal_id.encode()
            records += [(self.alerts_topic, key, record_json(alert)) for alert in owed.alert_contents]
            if owed.response_content is not None:
                records.append((self.responses_topic, key, record_json(owed.response_content)))
        return await self.send_records(records) if records else []

    async def emit_due(self, deals: KeyStore, owned: set[int], now: float) -> list[Awaitable[object]]:
        """Queue what the due deals owe and record it (durable at the next flush, which awaits the
        returned acknowledgements first)."""
        plans: list[Plan] = []
        writes: list[Write] = []
        for number, (deal_id, partition) in enumerate(self.schedule.pop_due(now, EMIT_AT_MOST)):
            if number % YIELD_EVERY_DEALS == YIELD_EVERY_DEALS - 1:
                await asyncio.sleep(0)  # as a batch does: the web server and heartbeats go on
            if partition not in owned:
                continue
            stored = deals.get_from(deal_id.encode(), partition)
            if stored is None:
                continue
            partition, state = decode_deal(stored)
            owed = self.plan(partition, state, now)
            if owed.owed:
                plans.append(owed)
                record = encode_deal(partition, owed.state)
                writes.append((deal_id.encode(), record, partition))
                if self.resized is not None:
                    self.resized(partition, len(stored), len(record))
        deliveries = await self.send(plans)
        deals.put_many(writes)
        return deliveries
