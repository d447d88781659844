"""Signed SMS API webhooks: the five methods, tampering, missing fields and freshness."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from collector.signatures import METHODS, sign_params, signature, signing_string, verify_webhook

from fakes.vonage_server import SENDER, deliver, delivery_receipt, inbound_message, signed

SECRET = "s3cr3t-signing-key"
NOW = 1796400000.0  # 2026-12-04 16:00:00 UTC

# An inbound text as Vonage signs it. `&` and `=` in the text are what the algorithm rewrites.
INBOUND = {
    "api-key": "abcd1234",
    "keyword": "HELLO",
    "message-timestamp": "2026-12-04 16:00:00",
    "messageId": "0A0000000123ABCD1",
    "msisdn": "447700900001",
    "nonce": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "text": "Hi& 50= off&today",
    "timestamp": "1796400000",
    "to": "447700900000",
    "type": "text",
}
# Written by hand from Vonage's "Signing Messages" steps: sorted keys, leading `&`, `&`/`=` → `_`.
INBOUND_STRING = (
    "&api-key=abcd1234&keyword=HELLO&message-timestamp=2026-12-04 16:00:00"
    "&messageId=0A0000000123ABCD1&msisdn=447700900001&nonce=aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    "&text=Hi_ 50_ off_today&timestamp=1796400000&to=447700900000&type=text"
)
# Computed outside Python with `openssl dgst` over INBOUND_STRING (+ SECRET for md5hash).
KNOWN_ANSWERS = {
    "md5hash": "99e2582923289fba0a11a9a273d3978c",
    "md5": "d7c5748cc336581bd36f07e01bf85d42",
    "sha1": "601aa34cdb5b1b5d60bd3f2ce57d3390140f6274",
    "sha256": "298a2f058a07691ea691a1713e53e20f319f0bfb8d900d09e7c69e6ab1c6034d",
    "sha512": (
        "7119c835be33a526e3ca4fb23abea106bccc878c7d7a233276e4e552de6ff546"
        "f5d48cb0a48ca496455b5c45bd05e8e811bf40dd1399c3e2641a4f0cc36b9daa"
    ),
}


def test_signing_string_follows_the_documented_steps() -> None:
    assert signing_string({**INBOUND, "sig": "ignored"}) == INBOUND_STRING


@pytest.mark.parametrize("method", METHODS)
def test_known_answers(method: str) -> None:
    assert signature(INBOUND, SECRET, method) == KNOWN_ANSWERS[method]
    as_vonage_sends_it = (
        KNOWN_ANSWERS[method].upper() if method != "md5hash" else KNOWN_ANSWERS[method]
    )
    assert verify_webhook({**INBOUND, "sig": as_vonage_sends_it}, SECRET, method, now=NOW)


def test_known_answers_match_hashlib_and_hmac_by_hand() -> None:
    """The literals above, recomputed here from the hand-written string (not our code)."""
    assert hashlib.md5((INBOUND_STRING + SECRET).encode()).hexdigest() == KNOWN_ANSWERS["md5hash"]
    for method in ("md5", "sha1", "sha256", "sha512"):
        mac = hmac.new(SECRET.encode(), INBOUND_STRING.encode(), method).hexdigest()
        assert mac == KNOWN_ANSWERS[method]


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_hmac_modes_agree_with_the_vonage_sdk(method: str) -> None:
    from vonage import Auth

    checker = Auth(api_key="abcd1234", signature_secret=SECRET, signature_method=method)
    assert checker.check_signature(sign_params(INBOUND, SECRET, method, NOW))


@pytest.mark.parametrize("method", METHODS)
def test_good_signature_is_accepted(method: str) -> None:
    receipt = {"messageId": "0A00000000000001", "status": "delivered", "err-code": "0"}
    signed = sign_params(receipt, SECRET, method, NOW, nonce="n-1")

    assert set(signed) == {*receipt, "timestamp", "nonce", "sig"}
    assert signed["timestamp"] == "1796400000"
    assert verify_webhook(signed, SECRET, method, now=NOW)
    assert verify_webhook({**signed, "sig": signed["sig"].lower()}, SECRET, method, now=NOW)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "change",
    [
        {"status": "failed"},  # a value changed
        {"extra": "1"},  # a parameter added
        {"nonce": "n-2"},
        {"timestamp": str(int(NOW) - 1)},
    ],
)
def test_tampered_request_is_rejected(method: str, change: dict[str, str]) -> None:
    signed = sign_params({"messageId": "0A01", "status": "delivered"}, SECRET, method, NOW)

    assert not verify_webhook({**signed, **change}, SECRET, method, now=NOW)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_secret_or_wrong_method_is_rejected(method: str) -> None:
    signed = sign_params({"messageId": "0A01"}, SECRET, method, NOW)

    assert not verify_webhook(signed, "another-secret", method, now=NOW)
    other = "sha256" if method != "sha256" else "sha512"
    assert not verify_webhook(signed, SECRET, other, now=NOW)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("missing", ["sig", "timestamp"])
def test_missing_sig_or_timestamp_is_rejected(method: str, missing: str) -> None:
    signed = sign_params({"messageId": "0A01"}, SECRET, method, NOW)
    del signed[missing]

    assert not verify_webhook(signed, SECRET, method, now=NOW)


@pytest.mark.parametrize("method", METHODS)
def test_freshness_window(method: str) -> None:
    signed = sign_params({"messageId": "0A01"}, SECRET, method, NOW)
    day = 24 * 3600

    assert verify_webhook(signed, SECRET, method, now=NOW + day)  # a day old: still fine
    assert not verify_webhook(signed, SECRET, method, now=NOW + day + 1)  # stale
    assert verify_webhook(signed, SECRET, method, now=NOW - 300)  # clocks a little apart
    assert not verify_webhook(signed, SECRET, method, now=NOW - 301)  # from the future


@pytest.mark.parametrize("timestamp", ["", "soon", "-1796400000", "1796400000.5", "１２３"])
def test_unreadable_timestamp_is_rejected(timestamp: str) -> None:
    params = {"messageId": "0A01", "timestamp": timestamp, "nonce": "n"}
    params["sig"] = signature(params, SECRET, "sha256")

    assert not verify_webhook(params, SECRET, "sha256", now=NOW)


def test_timestamp_in_milliseconds_is_understood() -> None:
    params = {"messageId": "0A01", "timestamp": "1796400000000", "nonce": "n"}
    params["sig"] = signature(params, SECRET, "sha256")

    assert verify_webhook(params, SECRET, "sha256", now=NOW)


def test_odd_signatures_are_rejected_without_error() -> None:
    signed = sign_params({"messageId": "0A01"}, SECRET, "sha256", NOW)

    assert not verify_webhook({**signed, "sig": "é" * 64}, SECRET, "sha256", now=NOW)
    assert not verify_webhook({**signed, "sig": ""}, SECRET, "sha256", now=NOW)
    assert not verify_webhook(signed, "", "sha256", now=NOW)


def test_unknown_method_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="sha384"):
        verify_webhook({"sig": "00", "timestamp": "1"}, SECRET, "sha384", now=NOW)
    with pytest.raises(ValueError):
        sign_params({}, SECRET, "none", NOW)


def _echo_app() -> Starlette:
    """A receiving end that merges query string and body the way a webhook handler would."""

    async def hook(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            params.update(json.loads(body))
        elif body:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        return JSONResponse(params)

    return Starlette(routes=[Route("/hook", hook, methods=["GET", "POST"])])


@pytest.mark.parametrize("how", ["form", "json", "get"])
@pytest.mark.parametrize("method", METHODS)
def test_webhooks_the_fake_delivers_verify_on_arrival(how: str, method: str) -> None:
    """The fake's receipts and inbound texts survive the trip and verify where they land."""
    receipt = delivery_receipt(
        message_id="0A0000000000002A", msisdn="+447400123456", client_ref="msg-7", now=NOW
    )
    inbound = inbound_message(msisdn="447400123456", to=SENDER, text="STOP now & = ok", now=NOW)
    with TestClient(_echo_app()) as client:
        for params in (receipt, inbound):
            sent = signed(params, SECRET, method, now=NOW)
            arrived = deliver("/hook", sent, how=how, client=client).json()

            assert arrived == sent
            assert verify_webhook(arrived, SECRET, method, now=NOW + 60)


def test_unsigned_webhooks_carry_vonage_fields_and_fail_verification() -> None:
    receipt = delivery_receipt(message_id="0A01", msisdn="447400123456", status="failed", now=NOW)
    inbound = inbound_message(msisdn="447400123456", to="447700123456", text="help me", now=NOW)

    assert receipt["scts"] == "2612041600"
    assert receipt["message-timestamp"] == "2026-12-04 16:00:00"
    assert (receipt["status"], receipt["err-code"], receipt["msisdn"]) == (
        "failed",
        "0",
        "447400123456",
    )
    assert (inbound["keyword"], inbound["type"]) == ("HELP", "text")
    for params in (receipt, inbound):
        assert not {"sig", "timestamp", "nonce"} & set(params)
        assert not verify_webhook(params, SECRET, "md5hash", now=NOW)
