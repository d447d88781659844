"""Deletes events of visitors never tied to a contact after `SMSR_EVENT_RETENTION_DAYS`.

Runs at start and then hourly, in small chunks so that ingest never waits long for the writer.
"""

from __future__ import annotations

import asyncio
import logging
import time

from collector.db import Database

log = logging.getLogger(__name__)

CHUNK = 5000
INTERVAL_SECONDS = 3600

DELETE_OLD_ANONYMOUS = """
delete from events where id in (
    select id from events where contact_id is null and at < ? limit ?
)
"""


async def purge_old_events(db: Database, retention_days: int, now_ms: int | None = None) -> int:
    """Delete anonymous events older than the retention; returns how many went."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = now_ms - retention_days * 86400 * 1000
    total = 0
    while True:
        deleted = await db.execute(DELETE_OLD_ANONYMOUS, (cutoff, CHUNK))
        total += deleted
        if deleted < CHUNK:
            return total
        await asyncio.sleep(0)
