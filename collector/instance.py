"""Keys this installation generates once and keeps in its database (`instance_keys`).

The secret key signs sessions, CSRF and link tokens unless `SMSR_SECRET_KEY` is set; other keys
(the suppression-list key) are deliberately never derived from it, so rotating one leaves the
others alone.
"""

from __future__ import annotations

import secrets

from collector.db import Database, now_iso


async def instance_key(db: Database, name: str) -> str:
    """The key called `name`, generated and stored on first use."""
    row = await db.fetchone("select value from instance_keys where name = ?", (name,))
    if row is not None:
        return str(row["value"])
    async with db.transaction() as conn:
        await conn.execute(
            "insert or ignore into instance_keys (name, value, created_at) values (?, ?, ?)",
            (name, secrets.token_urlsafe(32), now_iso()),
        )
        cursor = await conn.execute("select value from instance_keys where name = ?", (name,))
        row = await cursor.fetchone()
    assert row is not None
    return str(row["value"])
