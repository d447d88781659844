"""VonageSender against the fake Vonage over real TLS, with the real SDK doing the HTTP."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from decimal import Decimal

import certifi
import pytest

from collector.sender_types import SendError, SendResult
from collector.settings import Secret, Settings
from collector.vonage import VonageSender, close_sdk_client

from fakes.vonage_server import API_KEY, API_SECRET, SENDER, FakeVonage

TO = "+447400123456"
CALLBACK = "https://collector.example.com/webhooks/vonage/status"


async def send(via: VonageSender, text: str = "Your cart is waiting", **overrides) -> SendResult:
    fields = {
        "to": TO,
        "sender": None,
        "text": text,
        "client_ref": "msg-42",
        "callback_url": CALLBACK,
    }
    fields.update(overrides)
    return await via.send(**fields)


async def send_error(via: VonageSender, text: str = "Your cart is waiting", **kw) -> SendError:
    with pytest.raises(SendError) as caught:
        await send(via, text, **kw)
    return caught.value


@pytest.mark.asyncio
async def test_one_post_carries_the_text_and_asks_for_a_receipt(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    result = await send(vonage_sender)

    [request] = fake_vonage.requests  # exactly one POST
    assert (request.method, request.path) == ("POST", "/sms/json")
    assert request.basic_auth == (API_KEY, API_SECRET)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "to": "447400123456",
        "from": SENDER,
        "text": "Your cart is waiting",
        "type": "text",
        "client-ref": "msg-42",
        "status-report-req": "True",
        "callback": CALLBACK,
    }
    [part] = request.answer["messages"]
    assert result == SendResult(
        message_ids=(part["message-id"],),
        parts=1,
        price=Decimal("0.03330000"),
        currency=None,
        remaining_balance=Decimal(part["remaining-balance"]),
        network="23410",
    )


@pytest.mark.asyncio
async def test_text_outside_gsm7_goes_as_unicode(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    await send(vonage_sender, "Ça vous plaît ? 😀")
    await send(vonage_sender, "Prices from €9 [today] ^_^")

    unicode, gsm = fake_vonage.requests
    assert unicode.form["type"] == "unicode"
    assert unicode.form["text"] == "Ça vous plaît ? 😀"
    assert gsm.form["type"] == "text"


@pytest.mark.asyncio
async def test_site_sender_wins_and_loses_its_plus(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    await send(vonage_sender, sender="+447700123456", callback_url=None)

    [request] = fake_vonage.requests
    assert request.form["from"] == "447700123456"
    assert "callback" not in request.form


@pytest.mark.asyncio
async def test_long_text_reports_every_part_and_their_total_price(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    fake_vonage.succeed(price="0.05120000")

    result = await send(vonage_sender, "x" * 400)  # 3 parts of at most 153 septets

    assert result.parts == 3
    assert len(set(result.message_ids)) == 3
    assert result.price == Decimal("0.15360000")
    assert len(fake_vonage.requests) == 1


@pytest.mark.asyncio
async def test_the_fake_makes_one_receipt_per_accepted_part(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    result = await send(vonage_sender, "z" * 200)

    receipts = fake_vonage.receipts(status="delivered")

    assert tuple(r["messageId"] for r in receipts) == result.message_ids
    assert {(r["msisdn"], r["to"], r["client-ref"]) for r in receipts} == {
        ("447400123456", SENDER, "msg-42")
    }


@pytest.mark.asyncio
async def test_currency_is_the_one_configured(vonage_settings: Settings, fake_vonage) -> None:
    sender = VonageSender(vonage_settings, timeout=2, currency="EUR")
    try:
        assert (await send(sender)).currency == "EUR"
    finally:
        await sender.close()


@pytest.mark.asyncio
async def test_throttled_is_retry(vonage_sender: VonageSender, fake_vonage: FakeVonage) -> None:
    fake_vonage.fail(1)

    error = await send_error(vonage_sender)

    assert (error.kind, error.code, error.invalid_number) == ("retry", "1", False)
    assert error.retry_after == 1.0
    assert "Throttled" in error.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "kind", "invalid_number"),
    [
        ("2", "permanent", False),
        ("3", "permanent", False),
        ("4", "account", False),
        ("5", "retry", False),
        ("6", "permanent", True),
        ("7", "permanent", True),
        ("8", "account", False),
        ("9", "account", False),
        ("10", "retry", False),
        ("11", "account", False),
        ("12", "permanent", False),
        ("15", "permanent", False),
        ("23", "account", False),
        ("29", "account", False),
        ("33", "permanent", True),
        ("99", "permanent", False),  # a status we don't know: not sent, don't retry blindly
    ],
)
async def test_sms_api_refusals_are_classified(
    vonage_sender: VonageSender, fake_vonage: FakeVonage, status, kind, invalid_number
) -> None:
    fake_vonage.fail(status)

    error = await send_error(vonage_sender)

    assert (error.kind, error.code, error.invalid_number) == (kind, status, invalid_number)
    assert len(fake_vonage.requests) == 1


@pytest.mark.asyncio
async def test_wrong_secret_pauses_sending(vonage_settings: Settings, fake_vonage) -> None:
    settings = dataclasses.replace(vonage_settings, vonage_api_secret=Secret("not-the-secret"))
    sender = VonageSender(settings, timeout=2)
    try:
        error = await send_error(sender)
    finally:
        await sender.close()

    assert (error.kind, error.code) == ("account", "4")
    assert fake_vonage.requests[0].basic_auth == (API_KEY, "not-the-secret")


@pytest.mark.asyncio
async def test_partly_refused_long_text_is_not_resent_and_keeps_its_sent_parts(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    fake_vonage.fail_after(1, status=9)

    error = await send_error(vonage_sender, "y" * 400)

    assert (error.kind, error.code) == ("permanent", "9")
    assert error.sent is not None
    first = fake_vonage.requests[0].answer["messages"][0]
    assert error.sent.message_ids == (first["message-id"],)
    assert (error.sent.parts, error.sent.price) == (1, Decimal("0.03330000"))
    assert len(fake_vonage.requests) == 1


@pytest.mark.asyncio
async def test_long_text_refused_in_every_part_is_an_ordinary_refusal(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    fake_vonage.fail_after(0, status=9)

    error = await send_error(vonage_sender, "y" * 400)

    assert (error.kind, error.code, error.sent) == ("account", "9", None)


@pytest.mark.asyncio
async def test_timeout_is_unknown_after_exactly_one_post(
    vonage_settings: Settings, fake_vonage: FakeVonage
) -> None:
    fake_vonage.delay(3)
    sender = VonageSender(vonage_settings, timeout=1)
    try:
        error = await send_error(sender)
    finally:
        await sender.close()

    assert (error.kind, error.code) == ("unknown", "timeout")
    assert len(fake_vonage.requests) == 1


@pytest.mark.asyncio
async def test_dropped_connection_is_unknown_after_exactly_one_post(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    fake_vonage.drop()

    error = await send_error(vonage_sender)

    assert (error.kind, error.code) == ("unknown", "connection_lost")
    assert len(fake_vonage.requests) == 1


def test_the_sdk_alone_would_post_a_dropped_request_again(fake_vonage: FakeVonage) -> None:
    """Control for the test above: the fake's drop does trigger the SDK's re-POST loop."""
    from vonage import Auth, HttpClientOptions, Vonage
    from vonage_sms import SmsMessage

    fake_vonage.drop(times=2)
    client = Vonage(
        Auth(api_key=API_KEY, api_secret=API_SECRET),
        HttpClientOptions(rest_host=fake_vonage.host, timeout=2),
    )
    try:
        client.sms.send(SmsMessage(to="447400123456", from_=SENDER, text="hi"))
    finally:
        close_sdk_client(client)

    assert len(fake_vonage.requests) == 3  # one text, three POSTs


@pytest.mark.asyncio
async def test_connection_refused_is_retry(
    vonage_settings: Settings, fake_vonage: FakeVonage, closed_port: int
) -> None:
    settings = dataclasses.replace(vonage_settings, vonage_rest_host=f"127.0.0.1:{closed_port}")
    sender = VonageSender(settings, timeout=2)
    try:
        error = await send_error(sender)
    finally:
        await sender.close()

    assert (error.kind, error.code) == ("retry", "connect_failed")


@pytest.mark.asyncio
async def test_unknown_host_is_retry(vonage_settings: Settings, fake_vonage) -> None:
    settings = dataclasses.replace(vonage_settings, vonage_rest_host="no-such-host.invalid")
    sender = VonageSender(settings, timeout=2)
    try:
        error = await send_error(sender)
    finally:
        await sender.close()

    assert (error.kind, error.code) == ("retry", "connect_failed")


@pytest.mark.asyncio
async def test_untrusted_certificate_is_retry_and_sends_nothing(
    vonage_sender: VonageSender, fake_vonage: FakeVonage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())

    error = await send_error(vonage_sender)

    assert (error.kind, error.code) == ("retry", "connect_failed")
    assert fake_vonage.requests == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("http_status", "kind"),
    [(500, "unknown"), (503, "unknown"), (401, "account"), (404, "account"), (400, "permanent")],
)
async def test_http_errors_are_classified(
    vonage_sender: VonageSender, fake_vonage: FakeVonage, http_status: int, kind: str
) -> None:
    fake_vonage.http_error(http_status, body=b'{"title": "nope"}')

    error = await send_error(vonage_sender)

    assert (error.kind, error.code) == (kind, f"http_{http_status}")
    assert len(fake_vonage.requests) == 1


@pytest.mark.asyncio
async def test_http_429_is_retry_after_what_the_server_says(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    fake_vonage.http_error(429, headers={"Retry-After": "7"})

    error = await send_error(vonage_sender)

    assert (error.kind, error.retry_after) == ("retry", 7.0)


@pytest.mark.asyncio
async def test_event_loop_runs_while_a_send_waits(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    gate = fake_vonage.hold()
    sending = asyncio.create_task(send(vonage_sender))

    # This loop can only turn while the request is in flight if the send left the loop free.
    for _ in range(500):
        if fake_vonage.requests:
            break
        await asyncio.sleep(0.01)
    assert len(fake_vonage.requests) == 1
    assert not sending.done()

    gate.set()
    assert (await sending).parts == 1


@pytest.mark.asyncio
async def test_concurrent_sends_each_get_their_own_answer(
    vonage_sender: VonageSender, fake_vonage: FakeVonage
) -> None:
    results = await asyncio.gather(
        *(send(vonage_sender, f"text {n}", client_ref=f"msg-{n}") for n in range(12))
    )

    assert len({r.message_ids[0] for r in results}) == 12
    assert sorted(r.form["client-ref"] for r in fake_vonage.requests) == sorted(
        f"msg-{n}" for n in range(12)
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("overrides", "kind", "code"),
    [
        ({"to": "447400123456"}, "permanent", "invalid_number"),
        ({"to": "+0123"}, "permanent", "invalid_number"),
        ({"to": "+447400123456\n"}, "permanent", "invalid_number"),
        ({"text": ""}, "permanent", "empty_text"),
        ({"client_ref": "r" * 41}, "permanent", "invalid_request"),
        ({"callback_url": "https://example.com/" + "c" * 100}, "account", "callback_too_long"),
    ],
)
async def test_bad_input_is_refused_before_any_request(
    vonage_sender: VonageSender, fake_vonage: FakeVonage, overrides, kind, code
) -> None:
    error = await send_error(vonage_sender, **overrides)

    assert (error.kind, error.code) == (kind, code)
    assert error.invalid_number == (code == "invalid_number")
    assert fake_vonage.requests == []


@pytest.mark.asyncio
async def test_no_sender_anywhere_pauses_sending(vonage_settings: Settings, fake_vonage) -> None:
    sender = VonageSender(dataclasses.replace(vonage_settings, vonage_from=None), timeout=2)
    try:
        error = await send_error(sender)
    finally:
        await sender.close()

    assert (error.kind, error.code) == ("account", "no_sender")
    assert fake_vonage.requests == []


@pytest.mark.asyncio
async def test_the_secret_never_reaches_the_logs(
    vonage_sender: VonageSender, fake_vonage: FakeVonage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await send(vonage_sender)
    fake_vonage.fail(4)
    await send_error(vonage_sender)
    fake_vonage.http_error(500)
    await send_error(vonage_sender)

    basic = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
    assert caplog.records  # something was logged, so the check below means something
    assert API_SECRET not in caplog.text
    assert basic not in caplog.text


@pytest.mark.asyncio
async def test_closed_sender_refuses_to_send(vonage_settings: Settings, fake_vonage) -> None:
    sender = VonageSender(vonage_settings, timeout=2)
    await send(sender)
    await sender.close()
    await sender.close()  # closing twice is harmless

    with pytest.raises(RuntimeError):
        await send(sender)


def test_settings_mistakes_fail_at_construction(vonage_settings: Settings) -> None:
    with pytest.raises(ValueError, match="VONAGE_REST_HOST"):
        VonageSender(dataclasses.replace(vonage_settings, vonage_rest_host="https://x.example"))
    with pytest.raises(ValueError, match="timeout"):
        VonageSender(vonage_settings, timeout=0)
