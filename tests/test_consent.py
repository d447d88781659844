"""The consent ledger: append-only, chained by hash, tamper-evident; suppression; can_text."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from collector import consent
from collector.db import Database
from collector.sites import Site, create_site

from support import ORIGIN

PHONE = "+14155552671"


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "consent.db"))
    yield database
    await database.close()


@pytest_asyncio.fixture
async def site(db: Database) -> Site:
    return await create_site(db, {"name": "Shop", "origins": [ORIGIN]}, None)


async def new_contact(db: Database, site: Site, phone: str = PHONE) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "insert into contacts (site_id, phone, status, created_at, updated_at) "
            "values (?, ?, 'pending', 0, 0)",
            (site.id, phone),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


async def append(
    db: Database, site: Site, contact_id: int, kind: str, status: str, **proof: object
) -> dict:
    async with db.transaction() as conn:
        return await consent.append_record(
            conn,
            contact_id=contact_id,
            site_id=site.id,
            phone=PHONE,
            kind=kind,
            status=status,
            proof=consent.Proof(**{"source": "web_form", **proof}),  # type: ignore[arg-type]
            now=1_700_000_000_000,
        )


async def history(db: Database, site: Site) -> int:
    contact_id = await new_contact(db, site)
    await append(
        db,
        site,
        contact_id,
        "opt_in",
        "pending",
        consent_text="Text me offers — ✓ I agree",
        page_url=f"{ORIGIN}/signup",
        ip="203.0.113.9",
        user_agent="Mozilla/5.0",
        visitor_id="visitor-0001",
        event_uid="evt00000001",
    )
    await append(db, site, contact_id, "confirmation", "active", source="keyword", keyword="yes")
    await append(db, site, contact_id, "opt_out", "opted_out", source="keyword", keyword="STOP")
    return contact_id


@pytest.mark.asyncio
async def test_records_chain_and_set_the_status(db: Database, site: Site) -> None:
    contact_id = await history(db, site)
    records = await consent.ledger(db.reader, contact_id)
    assert [r["kind"] for r in records] == ["opt_in", "confirmation", "opt_out"]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev_hash"] == ""
    assert records[1]["prev_hash"] == records[0]["hash"]
    assert records[0]["consent_text"] == "Text me offers — ✓ I agree"
    check = consent.verify_chain(records)
    assert check.valid and check.records == 3 and check.head == records[2]["hash"]
    row = await db.fetchone(
        "select status, pending_since from contacts where id = ?", (contact_id,)
    )
    assert row is not None and row["status"] == "opted_out" and row["pending_since"] is None


@pytest.mark.asyncio
async def test_the_database_refuses_edits_deletes_and_broken_links(
    db: Database, site: Site
) -> None:
    contact_id = await history(db, site)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await db.execute("update consents set consent_text = 'I agree' where seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await db.execute("delete from consents where contact_id = ?", (contact_id,))
    with pytest.raises(sqlite3.IntegrityError, match="does not continue"):
        await db.execute(
            "insert into consents (contact_id, site_id, seq, kind, status, source, phone, at, "
            "recorded_at, prev_hash, hash) values (?, ?, 4, 'opt_in', 'active', 'api', ?, 0, 0, "
            "'forged', 'x')",
            (contact_id, site.id, PHONE),
        )
    # erasing the contact takes its records with it (the only way they go)
    await db.execute("delete from contacts where id = ?", (contact_id,))
    assert await consent.ledger(db.reader, contact_id) == []


@pytest.mark.asyncio
async def test_tampering_behind_the_triggers_back_shows_in_the_chain(
    db: Database, site: Site
) -> None:
    contact_id = await history(db, site)
    raw = sqlite3.connect(db.path)
    raw.execute("drop trigger consents_no_update")
    raw.execute("update consents set consent_text = 'Anything goes' where seq = 1")
    raw.commit()
    raw.close()
    check = consent.verify_chain(await consent.ledger(db.reader, contact_id))
    assert not check.valid
    assert check.problems == ("record 1: hash does not match its fields (edited)",)


def test_a_missing_record_shows() -> None:
    first = {name: None for name in consent.HASHED_FIELDS} | {"seq": 1, "prev_hash": ""}
    first["hash"] = consent.record_hash(first)
    second = dict(first, seq=2, prev_hash=first["hash"])
    second["hash"] = consent.record_hash(second)
    third = dict(first, seq=3, prev_hash=second["hash"])
    third["hash"] = consent.record_hash(third)
    assert consent.verify_chain([first, second, third]).valid
    check = consent.verify_chain([first, third])
    assert check.problems == (
        "record 2: seq is 3, a record is missing",
        "record 2: prev_hash does not match the record before",
    )


def test_the_hash_is_the_documented_algorithm() -> None:
    import hashlib
    import json

    record = {name: None for name in consent.HASHED_FIELDS} | {"seq": 1, "consent_text": "é"}
    expected = hashlib.sha256(
        json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert consent.record_hash(record) == expected


@pytest.mark.asyncio
async def test_suppression_is_keyed_and_per_site(db: Database, site: Site) -> None:
    other = await create_site(db, {"name": "Other", "origins": [ORIGIN]}, None)
    async with db.transaction() as conn:
        await consent.suppress(conn, "key-1", PHONE, site.id, "opted_out", 1)
        assert await consent.is_suppressed(conn, "key-1", PHONE, site.id) == "opted_out"
        assert await consent.is_suppressed(conn, "key-1", PHONE, other.id) is None
        assert await consent.is_suppressed(conn, "key-2", PHONE, site.id) is None
        await consent.suppress(conn, "key-1", PHONE, site.id, "erased", 2)
        assert await consent.is_suppressed(conn, "key-1", PHONE, site.id) == "erased"
        await consent.suppress(conn, "key-1", PHONE, None, "opted_out", 3)
        assert await consent.is_suppressed(conn, "key-1", PHONE, other.id) == "opted_out"
        await consent.lift_suppression(conn, "key-1", PHONE, other.id)
        assert await consent.is_suppressed(conn, "key-1", PHONE, other.id) is None
        assert await consent.is_suppressed(conn, "key-1", PHONE, site.id) == "erased"
    rows = await db.fetchall("select phone_hash from suppressions")
    assert all(PHONE not in r["phone_hash"] and len(r["phone_hash"]) == 64 for r in rows)


@pytest.mark.asyncio
async def test_can_text_only_active_unsuppressed_contacts(db: Database, site: Site) -> None:
    contact_id = await new_contact(db, site)
    async with db.transaction() as conn:
        assert await consent.can_text(conn, "k", contact_id) == "no_consent"
        assert await consent.can_text(conn, "k", 999) == "no_consent"
    await append(db, site, contact_id, "opt_in", "active")
    async with db.transaction() as conn:
        assert await consent.can_text(conn, "k", contact_id) is None
        await consent.suppress(conn, "k", PHONE, site.id, "erased", 1)
        assert await consent.can_text(conn, "k", contact_id) == "opted_out"
    await append(db, site, contact_id, "opt_out", "opted_out")
    async with db.transaction() as conn:
        assert await consent.can_text(conn, "other-key", contact_id) == "opted_out"


@pytest.mark.asyncio
async def test_unconfirmed_opt_ins_expire(db: Database, site: Site) -> None:
    old = await new_contact(db, site)
    fresh = await new_contact(db, site, "+14155552672")
    await append(db, site, old, "opt_in", "pending")
    await append(db, site, fresh, "opt_in", "pending")
    await db.execute("update contacts set pending_since = 1000 where id = ?", (old,))
    assert await consent.expire_pending(db, 72, now=1000 + 72 * 3600 * 1000) == 1
    statuses = {r["id"]: r["status"] for r in await db.fetchall("select id, status from contacts")}
    assert statuses == {old: "expired", fresh: "pending"}
    records = await consent.ledger(db.reader, old)
    assert [(r["kind"], r["source"], r["status"]) for r in records][-1] == (
        "expiry",
        "system",
        "expired",
    )
    assert consent.verify_chain(records).valid
