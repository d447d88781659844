"""The sending path: texts through the real Vonage SDK to the TLS fake, receipts back through the
real webhook, and every outcome of a send recorded as the contract says."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from starlette.testclient import TestClient

from collector import consent
from collector.app import create_app
from collector.db import Database
from collector.optins import upsert_contact
from collector.sending import ConsoleSender, Outbox, make_sender, queue_message
from collector.settings import Settings
from collector.sites import Site, create_site
from collector.throttle import RateLimitedSender
from collector.vonage import VonageSender

from fakes.vonage_server import FakeVonage, deliver, delivery_receipt
from optin_support import (
    PHONE,
    contact_by_phone,
    messages,
    send_optin,
    settled,
    text_in,
    wait_until,
)
from support import DESKTOP_UA, ORIGIN

PUBLIC = "https://collector.example.com"
OUR_NUMBER = "14155550100"
LONG_HELP = (
    "Shop: reminders about your cart and offers, up to 1 msg/day. Msg & data rates may apply. "
    "For help write to help@shop.example.com or call 415 555 0100 on weekdays. "
    "Reply STOP to opt out at any time, START to come back. We never share your number. "
    "Terms and privacy: https://shop.example.com/sms-terms - thank you for shopping with us!"
)


@pytest.fixture
def vonage_client(vonage_settings: Settings) -> Iterator[TestClient]:
    settings = dataclasses.replace(vonage_settings, public_url=PUBLIC)
    with TestClient(create_app(settings), headers={"User-Agent": DESKTOP_UA}) as client:
        yield client


@pytest.fixture
def numeric_site(vonage_client: TestClient, admin: dict) -> dict:
    response = vonage_client.post(
        "/api/v1/sites",
        json={
            "name": "Shop",
            "origins": [ORIGIN],
            "sender": OUR_NUMBER,
            "double_opt_in": True,
            "help_text": LONG_HELP,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return response.json()


def receipts_in(client: TestClient, receipts: list[dict[str, str]]) -> None:
    for receipt in receipts:
        assert deliver("/webhooks/vonage/status", receipt, client=client).status_code == 200


def test_a_confirmation_goes_through_vonage_and_its_receipt_marks_it_delivered(
    vonage_client: TestClient, admin: dict, numeric_site: dict, fake_vonage: FakeVonage
) -> None:
    send_optin(vonage_client, numeric_site)
    [text] = settled(vonage_client, admin)
    assert (text["status"], text["segments"], text["price"]) == ("sent", 1, 0.0333)
    [request] = fake_vonage.sms_requests
    form = request.form
    assert form["to"] == PHONE[1:] and form["from"] == OUR_NUMBER
    assert form["text"] == text["body"] and form["type"] == "text"
    assert form["callback"] == f"{PUBLIC}/webhooks/vonage/status"
    assert 1 <= len(form["client-ref"]) <= 40
    receipts = fake_vonage.receipts()
    receipts_in(vonage_client, receipts)
    [text] = messages(vonage_client, admin)
    assert text["status"] == "delivered" and text["delivered_at"] is not None
    receipts_in(vonage_client, receipts)  # a replayed receipt changes nothing
    assert messages(vonage_client, admin) == [text]


def test_a_long_reply_is_delivered_when_every_part_is(
    vonage_client: TestClient, admin: dict, numeric_site: dict, fake_vonage: FakeVonage
) -> None:
    text_in(vonage_client, "HELP", msisdn="+14155550199", to=OUR_NUMBER)
    [reply] = settled(vonage_client, admin)
    receipts = fake_vonage.receipts()
    assert len(receipts) == reply["segments"] >= 2
    assert reply["price"] == pytest.approx(0.0333 * reply["segments"])
    receipts_in(vonage_client, receipts[:-1])
    assert messages(vonage_client, admin)[0]["status"] == "sent"
    receipts_in(vonage_client, receipts[-1:])
    assert messages(vonage_client, admin)[0]["status"] == "delivered"


@pytest.mark.parametrize(
    ("status", "err_code", "reason"),
    [
        ("rejected", "6", "rejected (err-code 6)"),
        ("expired", "1", "expired (err-code 1)"),
        ("failed", "12", "failed (err-code 12)"),
    ],
)
def test_failed_rejected_and_expired_receipts_fail_the_text_with_the_code(
    vonage_client: TestClient,
    admin: dict,
    numeric_site: dict,
    fake_vonage: FakeVonage,
    status: str,
    err_code: str,
    reason: str,
) -> None:
    send_optin(vonage_client, numeric_site)
    settled(vonage_client, admin)
    receipts_in(vonage_client, fake_vonage.receipts(status=status, err_code=err_code))
    [text] = messages(vonage_client, admin)
    assert (text["status"], text["reason"]) == ("failed", reason)
    contact = contact_by_phone(vonage_client, admin)
    assert contact is not None and contact["status"] == "pending"


def test_a_dead_number_receipt_makes_the_contact_undeliverable(
    vonage_client: TestClient, admin: dict, numeric_site: dict, fake_vonage: FakeVonage
) -> None:
    send_optin(vonage_client, numeric_site)
    settled(vonage_client, admin)
    receipts_in(vonage_client, fake_vonage.receipts(status="failed", err_code="3"))
    contact = contact_by_phone(vonage_client, admin)
    assert contact is not None and contact["status"] == "undeliverable"


def test_receipts_match_by_client_ref_when_the_send_answer_was_lost(
    vonage_client: TestClient, admin: dict, numeric_site: dict, fake_vonage: FakeVonage
) -> None:
    fake_vonage.drop()
    send_optin(vonage_client, numeric_site)
    wait_until(lambda: fake_vonage.sms_requests)
    wait_until(lambda: messages(vonage_client, admin)[0]["status"] == "sending")
    client_ref = fake_vonage.sms_requests[0].form["client-ref"]
    stray = delivery_receipt(message_id="0AFFFFFFFFFFFFFF", msisdn=PHONE)
    receipts_in(vonage_client, [stray])  # unknown id, no client-ref: 200 and ignored
    assert messages(vonage_client, admin)[0]["status"] == "sending"
    by_ref = delivery_receipt(message_id="0AEEEEEEEEEEEEEE", msisdn=PHONE, client_ref=client_ref)
    receipts_in(vonage_client, [by_ref])
    assert messages(vonage_client, admin)[0]["status"] == "delivered"
    assert len(fake_vonage.sms_requests) == 1  # and it was never sent twice


def test_console_sender_prints_the_text(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    stream = io.StringIO()
    result = asyncio.run(
        ConsoleSender(stream).send(
            to=PHONE, sender=None, text="Hi €", client_ref="ref", callback_url=None
        )
    )
    assert stream.getvalue() == f"[sms] to {PHONE} from (default) (1 part(s)): Hi €\n"
    assert result.parts == 1 and result.message_ids == ("console-ref-1",)


def test_the_provider_setting_picks_the_sender(
    settings: Settings, vonage_settings: Settings
) -> None:
    assert isinstance(make_sender(settings), ConsoleSender)  # not rate limited
    vonage = make_sender(vonage_settings)
    assert isinstance(vonage, RateLimitedSender) and isinstance(vonage.inner, VonageSender)
    assert vonage.interval == pytest.approx(1 / (vonage_settings.sms_rate * 0.97))


# -- the outbox against the fake, one outcome at a time ---------------------------------------


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "sending.db"))
    yield database
    await database.close()


@pytest_asyncio.fixture
async def outbox(
    db: Database, vonage_settings: Settings, vonage_sender: VonageSender
) -> AsyncIterator[Outbox]:
    yield Outbox(db, vonage_sender, vonage_settings, "suppression-key")


async def contact_and_text(db: Database, status: str = "active", kind: str = "manual") -> int:
    site: Site = await create_site(db, {"name": "Shop", "origins": [ORIGIN]}, "AcmeInc")
    now = consent.now_ms()
    async with db.transaction() as conn:
        contact_id = await upsert_contact(conn, site.id, PHONE, None, now)
        await consent.append_record(
            conn,
            contact_id=contact_id,
            site_id=site.id,
            phone=PHONE,
            kind="opt_in",
            status=status,
            proof=consent.Proof("api", consent_text="ok"),
            now=now,
        )
        return await queue_message(
            conn,
            kind=kind,
            to=PHONE,
            body="Your cart misses you",
            now=now,
            site_id=site.id,
            contact_id=contact_id,
        )


async def row_of(db: Database, message_id: int) -> dict:
    row = await db.fetchone("select * from messages where id = ?", (message_id,))
    assert row is not None
    return dict(row)


@pytest.mark.asyncio
async def test_throttled_goes_back_to_scheduled_and_then_out(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db)
    fake_vonage.fail(1, times=1)
    assert await outbox.send(message_id) == "scheduled"
    row = await row_of(db, message_id)
    assert row["attempts"] == 1 and row["due_at"] > row["created_at"]
    assert await outbox.send(message_id) == "sent"
    assert (await row_of(db, message_id))["attempts"] == 2
    assert len(fake_vonage.sms_requests) == 2


@pytest.mark.asyncio
async def test_an_invalid_number_fails_and_the_contact_is_undeliverable(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db)
    fake_vonage.fail(6)
    assert await outbox.send(message_id) == "failed"
    assert (await row_of(db, message_id))["reason"] == "invalid_number"
    contact = await db.fetchone("select status from contacts")
    assert contact is not None and contact["status"] == "undeliverable"


@pytest.mark.asyncio
async def test_an_account_error_pauses_and_keeps_the_text(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db)
    fake_vonage.fail(4)
    assert await outbox.send(message_id) == "scheduled"
    assert outbox.paused
    row = await row_of(db, message_id)
    assert row["status"] == "scheduled" and row["attempts"] == 0


@pytest.mark.asyncio
async def test_a_lost_answer_is_never_resent_and_settles_as_unknown_outcome(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db)
    fake_vonage.drop()
    assert await outbox.send(message_id) == "sending"
    assert await outbox.send(message_id) is None  # not scheduled: never sent twice
    assert len(fake_vonage.sms_requests) == 1
    later = consent.now_ms() + 2 * 3600 * 1000
    assert await outbox.sweep_unknown_outcomes(now=later) == 1
    row = await row_of(db, message_id)
    assert (row["status"], row["reason"]) == ("failed", "unknown_outcome")
    # a receipt that turns up after all, matched by client-ref, still tells the truth
    receipt = delivery_receipt(
        message_id="0A0000000000AAAA", msisdn=PHONE, client_ref=row["client_ref"]
    )
    from collector.receipts import apply_receipt

    async with db.transaction() as conn:
        assert await apply_receipt(conn, receipt, later) == "applied"
    assert (await row_of(db, message_id))["status"] == "delivered"


@pytest.mark.asyncio
async def test_a_partly_accepted_long_text_is_not_resent(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db)
    await db.execute("update messages set body = ? where id = ?", ("x" * 300, message_id))
    fake_vonage.fail_after(1, status=9)
    assert await outbox.send(message_id) == "failed"
    row = await row_of(db, message_id)
    assert row["reason"].startswith("9: ") and row["sent_at"] is not None
    parts = await db.fetchall("select * from message_parts where message_id = ?", (message_id,))
    assert len(parts) == 1


@pytest.mark.asyncio
async def test_the_last_check_before_sending(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    opted_out = await contact_and_text(db, status="opted_out")
    assert await outbox.send(opted_out) == "skipped"
    assert (await row_of(db, opted_out))["reason"] == "opted_out"
    assert fake_vonage.sms_requests == []


@pytest.mark.asyncio
async def test_a_callers_check_can_refuse(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db)

    async def capped(conn, row, now) -> str | None:
        return "capped"

    assert await outbox.send(message_id, check=capped) == "skipped"
    assert (await row_of(db, message_id))["reason"] == "capped"


@pytest.mark.asyncio
async def test_a_confirmation_only_goes_to_a_pending_contact(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db, status="active", kind="confirmation")
    assert await outbox.send(message_id) == "skipped"
    assert (await row_of(db, message_id))["reason"] == "no_consent"


@pytest.mark.asyncio
async def test_a_stale_keyword_reply_is_skipped(
    db: Database, outbox: Outbox, fake_vonage: FakeVonage
) -> None:
    message_id = await contact_and_text(db, kind="keyword_reply")
    await db.execute("update messages set created_at = 0 where id = ?", (message_id,))
    assert await outbox.send(message_id) == "skipped"
    assert (await row_of(db, message_id))["reason"] == "stale"
