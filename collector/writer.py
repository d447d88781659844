"""Group commit for ingested events: 202 only after COMMIT, without one transaction per request.

Requests hand their rows to `EventWriter.write()` and wait. One task takes everything queued
since its last commit and writes it in a single transaction, then wakes all those requests. There
is no timer: while a commit runs, the next group gathers by itself, so a busy server commits big
groups and an idle one commits at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from collector.db import Database

log = logging.getLogger(__name__)

INSERT_EVENT = """
insert or ignore into events
    (site_id, uid, name, visitor_id, session_id, url, path, title, props, at, received_at)
values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

Row = Sequence[Any]


class WriterOverloaded(Exception):
    """More events are waiting for the database than `SMSR_WRITE_QUEUE_LIMIT` allows."""


class EventWriter:
    def __init__(self, db: Database, queue_limit: int, dropped: dict[str, int]) -> None:
        self.db = db
        self.queue_limit = queue_limit
        self.dropped = dropped  # metrics: events not stored, by reason
        self.pending_rows = 0
        self._queue: list[tuple[list[Row], asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Commit whatever is queued, then end; nothing accepted is left unwritten."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def write(self, rows: list[Row]) -> int:
        """Queue rows and wait until they are committed; returns how many were new."""
        if self._stopping:
            raise WriterOverloaded("shutting down")
        if self.pending_rows + len(rows) > self.queue_limit:
            raise WriterOverloaded(f"{self.pending_rows} events waiting")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, future))
        self.pending_rows += len(rows)
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._queue:
                group, self._queue = self._queue, []
                await self._commit(group)
            elif self._stopping:
                return

    async def _commit(self, group: list[tuple[list[Row], asyncio.Future[int]]]) -> None:
        rows = [row for batch, _ in group for row in batch]
        try:
            inserted = await self.db.write_batch(INSERT_EVENT, rows)
        except Exception as exc:  # the requests get a 503; the writer keeps running
            log.exception("event write of %d rows failed", len(rows))
            for _, future in group:
                if not future.done():
                    future.set_exception(WriterOverloaded(str(exc)))
        else:
            self.dropped["duplicate"] += len(rows) - inserted
            for batch, future in group:
                if not future.done():
                    future.set_result(len(batch))
        finally:
            self.pending_rows -= len(rows)
            self._wake.set()
