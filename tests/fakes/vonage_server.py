"""A fake of the Vonage SMS API endpoint we use, served over real TLS by uvicorn in a thread.

The real `vonage` SDK only speaks https, so the fake has a throw-away certificate (IP SAN
127.0.0.1) that tests trust through `REQUESTS_CA_BUNDLE`. It records every request and answers
as told: accepted (one entry per part, with ids and prices), refused with an SMS API status, an
HTTP error, late, held until the test lets go, or not at all (connection closed after reading
the request). It also builds the webhooks Vonage sends back (delivery receipts and inbound texts,
signed or not) and delivers them, so tests can drive our webhooks the way Vonage does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import certifi
import httpx2
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.signatures import sign_params
from collector.sms_encoding import analyze

API_KEY = "abcd1234"
API_SECRET = "fake-secret-0123"
SENDER = "AcmeInc"

# Error texts as the SMS API words them (the SDK puts them in its exception text).
ERROR_TEXTS = {
    "1": "Throttled",
    "2": "Missing to param",
    "3": "Invalid to param",
    "4": "Bad Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number barred.",
    "8": "Partner account barred",
    "9": "Partner quota exceeded",
    "10": "Too many existing binds",
    "11": "Account not enabled for HTTP",
    "12": "Message too long",
    "14": "Invalid Signature",
    "15": "Illegal Sender Address - rejected",
    "22": "Invalid Network Code",
    "23": "Invalid Callback Url",
    "29": "Non White-listed Destination - rejected",
    "32": "Signature And API Secret Disallowed",
    "33": "Number de-activated",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, and the JSON it answered (None if it didn't)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    form: dict[str, str]
    answer: dict[str, Any] | None

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


@dataclass
class _Answer:
    kind: str  # "success" | "status" | "partial" | "http" | "drop"
    status: str = "0"
    error_text: str = ""
    ok_parts: int = 0
    http_status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    price: str = "0.03330000"
    network: str = "23410"


class FakeVonage:
    """State and behaviour of the fake; answers stick until changed unless given `times`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.host = ""  # "127.0.0.1:PORT", set once the server runs
        self.app = Starlette(routes=[Route("/sms/json", self._sms, methods=["POST"])])
        self.reset()

    # -- what tests read -------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def sms_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/sms/json"]

    def settings_overrides(self) -> dict[str, Any]:
        """Settings fields that point a `Settings` at this fake."""
        from collector.settings import Secret

        return {
            "vonage_api_key": API_KEY,
            "vonage_api_secret": Secret(API_SECRET),
            "vonage_rest_host": self.host,
            "vonage_from": SENDER,
            "sms_provider": "vonage",
        }

    # -- how the next requests are answered --------------------------------------------------
    def reset(self) -> None:
        """Forget requests; accept every text; no delay; let any held answer go."""
        with self._lock:
            self._requests: list[RecordedRequest] = []
            self._sticky = _Answer("success")
            self._queue: list[_Answer] = []
            self._delay = 0.0
            self._balance = Decimal("10.00000000")
            gate = getattr(self, "_gate", None)
            self._gate: threading.Event | None = None
        if gate is not None:
            gate.set()

    def succeed(
        self, *, price: str = "0.03330000", network: str = "23410", times: int | None = None
    ) -> None:
        self._set(_Answer("success", price=price, network=network), times)

    def fail(
        self, status: int | str, error_text: str | None = None, *, times: int | None = None
    ) -> None:
        """Refuse with an SMS API status (HTTP 200), e.g. 1 throttled, 4 bad credentials."""
        status = str(status)
        text = error_text if error_text is not None else ERROR_TEXTS.get(status, "Error")
        self._set(_Answer("status", status=status, error_text=text), times)

    def fail_after(self, ok_parts: int, status: int | str = 9, *, times: int | None = None) -> None:
        """Accept the first `ok_parts` parts of a long text and refuse the others."""
        status = str(status)
        answer = _Answer("partial", status=status, error_text=ERROR_TEXTS.get(status, "Error"))
        answer.ok_parts = ok_parts
        self._set(answer, times)

    def http_error(
        self,
        status_code: int,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer with an HTTP error, as a proxy or gateway in front of the API would."""
        self._set(
            _Answer("http", http_status=status_code, body=body, headers=dict(headers or {})), times
        )

    def drop(self, *, times: int | None = None) -> None:
        """Read the whole request, then close the connection without answering."""
        self._set(_Answer("drop"), times)

    def delay(self, seconds: float) -> None:
        """Wait this long before every answer (to make clients time out)."""
        with self._lock:
            self._delay = seconds

    def hold(self) -> threading.Event:
        """Hold every answer until the returned event is set (reset sets it too)."""
        gate = threading.Event()
        with self._lock:
            self._gate = gate
        return gate

    def _set(self, answer: _Answer, times: int | None) -> None:
        with self._lock:
            if times is None:
                self._sticky = answer
            else:
                self._queue.extend([answer] * times)

    def _next_answer(self) -> tuple[_Answer, float, threading.Event | None]:
        with self._lock:
            answer = self._queue.pop(0) if self._queue else self._sticky
            return answer, self._delay, self._gate

    # -- the endpoint ------------------------------------------------------------------------
    async def _sms(self, request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer, delay, gate = self._next_answer()
        if answer.kind == "drop":
            self._record(request, headers, body, form, None)
            await _drop_connection(request)
            return Response(status_code=500)  # never reaches the client
        if answer.kind == "http":
            self._record(request, headers, body, form, None)
            await _wait(delay, gate)
            return Response(answer.body, status_code=answer.http_status, headers=answer.headers)
        reply = self._reply(answer, headers, form)
        self._record(request, headers, body, form, reply)
        await _wait(delay, gate)
        return JSONResponse(reply)

    def _reply(self, answer: _Answer, headers: dict[str, str], form: dict[str, str]) -> dict:
        if not _authorised(headers, form):
            return _refusal("4", ERROR_TEXTS["4"])
        missing = [name for name in ("from", "to", "text") if not form.get(name)]
        if missing:
            return _refusal("2", f"Missing {missing[0]} param")
        if answer.kind == "status":
            return _refusal(answer.status, answer.error_text)
        forced = "UCS-2" if form.get("type") == "unicode" else None
        parts = max(1, analyze(form["text"], forced).segments)
        messages = []
        for number in range(parts):
            if answer.kind == "partial" and number >= answer.ok_parts:
                messages.append({"status": answer.status, "error-text": answer.error_text})
                continue
            messages.append(self._accepted(form, answer))
        return {"message-count": str(parts), "messages": messages}

    def _accepted(self, form: dict[str, str], answer: _Answer) -> dict[str, str]:
        with self._lock:
            self._balance -= Decimal(answer.price)
            balance = self._balance
            message_id = f"0A{next(self._ids):014X}"
        part = {
            "to": form["to"],
            "message-id": message_id,
            "status": "0",
            "remaining-balance": f"{balance:.8f}",
            "message-price": answer.price,
            "network": answer.network,
        }
        if "client-ref" in form:
            part["client-ref"] = form["client-ref"]
        return part

    def _record(self, request: Request, headers, body, form, answer) -> None:
        recorded = RecordedRequest(request.method, request.url.path, headers, body, form, answer)
        with self._lock:
            self._requests.append(recorded)

    # -- webhooks Vonage sends back ----------------------------------------------------------
    def receipts(
        self,
        sent: RecordedRequest | None = None,
        *,
        status: str = "delivered",
        err_code: str = "0",
        now: float | None = None,
    ) -> list[dict[str, str]]:
        """One delivery receipt per accepted part of `sent` (default: the last accepted send)."""
        if sent is None:
            accepted = [r for r in self.sms_requests if r.answer and _ok_parts(r.answer)]
            if not accepted:
                raise AssertionError("the fake accepted no text to make receipts for")
            sent = accepted[-1]
        assert sent.answer is not None
        return [
            delivery_receipt(
                message_id=part["message-id"],
                msisdn=sent.form["to"],
                to=sent.form["from"],
                status=status,
                err_code=err_code,
                price=part.get("message-price", "0.03330000"),
                client_ref=sent.form.get("client-ref"),
                network_code=part.get("network", "23410"),
                now=now,
            )
            for part in _ok_parts(sent.answer)
        ]


def _ok_parts(answer: dict[str, Any]) -> list[dict[str, str]]:
    return [m for m in answer.get("messages", []) if m.get("status") == "0"]


def _authorised(headers: Mapping[str, str], form: Mapping[str, str]) -> bool:
    expected = "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
    if headers.get("authorization") == expected:
        return True
    return form.get("api_key") == API_KEY and form.get("api_secret") == API_SECRET


def _refusal(status: str, text: str) -> dict[str, Any]:
    return {"message-count": "1", "messages": [{"status": status, "error-text": text}]}


async def _wait(delay: float, gate: threading.Event | None) -> None:
    if delay:
        await asyncio.sleep(delay)
    deadline = time.monotonic() + 30  # a forgotten gate must not hang the session
    while gate is not None and not gate.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _drop_connection(request: Request) -> None:
    """Close the TCP/TLS connection under this request, as a server crashing mid-request would.

    ASGI has no "close without answering", so this reaches uvicorn's transport through the
    bound `receive` of its request cycle (test-only; checked against uvicorn's h11 protocol).
    """
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot reach uvicorn's transport to drop the connection")
    transport.close()
    while (await request.receive())["type"] != "http.disconnect":
        pass


# -- the server --------------------------------------------------------------------------------


class FakeVonageServer:
    """Serves a `FakeVonage` over TLS on 127.0.0.1 from a uvicorn thread."""

    def __init__(self, fake: FakeVonage, directory: Path) -> None:
        self.fake = fake
        self.cert_path, self.key_path = make_certificate(directory)
        self.ca_bundle = make_ca_bundle(directory, self.cert_path)
        config = uvicorn.Config(
            fake.app,
            host="127.0.0.1",
            port=0,
            ssl_certfile=str(self.cert_path),
            ssl_keyfile=str(self.key_path),
            http="h11",  # _drop_connection relies on its request cycle
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,  # a client that never closes must not hold the session
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-vonage", daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Vonage server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.fake.host = f"127.0.0.1:{port}"

    def stop(self) -> None:
        self.fake.reset()  # release held answers so shutdown doesn't wait for them
        self._server.should_exit = True
        self._thread.join(10)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake Vonage (tests only)")])
    now = datetime.now(UTC)
    subject_key = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(subject_key, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_key),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-vonage.pem", directory / "fake-vonage.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_ca_bundle(directory: Path, cert_path: Path) -> Path:
    """The CA bundle requests would use anyway, plus our certificate: other https still works."""

    original = Path(os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where())
    existing = original.read_text() if original.is_file() else ""
    bundle = directory / "ca-bundle.pem"
    bundle.write_text(existing.rstrip("\n") + "\n" + cert_path.read_text())
    return bundle


# -- webhooks ----------------------------------------------------------------------------------


def _vonage_time(now: float | None) -> datetime:
    return datetime.fromtimestamp(time.time() if now is None else now, UTC)


def delivery_receipt(
    *,
    message_id: str,
    msisdn: str,
    to: str = SENDER,
    status: str = "delivered",
    err_code: str = "0",
    price: str = "0.03330000",
    client_ref: str | None = None,
    network_code: str = "23410",
    api_key: str = API_KEY,
    now: float | None = None,
) -> dict[str, str]:
    """An SMS API delivery receipt as Vonage sends it (unsigned; see `signed`)."""
    at = _vonage_time(now)
    params = {
        "msisdn": msisdn.removeprefix("+"),
        "to": to,
        "network-code": network_code,
        "messageId": message_id,
        "price": price,
        "status": status,
        "scts": at.strftime("%y%m%d%H%M"),
        "err-code": err_code,
        "api-key": api_key,
        "message-timestamp": at.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if client_ref is not None:
        params["client-ref"] = client_ref
    return params


def inbound_message(
    *,
    msisdn: str,
    to: str,
    text: str,
    message_id: str | None = None,
    api_key: str = API_KEY,
    now: float | None = None,
) -> dict[str, str]:
    """An SMS API inbound text as Vonage sends it (unsigned; see `signed`)."""
    words = text.split()
    return {
        "msisdn": msisdn.removeprefix("+"),
        "to": to.removeprefix("+"),
        "messageId": message_id or f"1B{time.time_ns() % 16**14:014X}",
        "text": text,
        "type": "text" if analyze(text).name == "GSM-7" else "unicode",
        "keyword": words[0].upper() if words else "",
        "message-timestamp": _vonage_time(now).strftime("%Y-%m-%d %H:%M:%S"),
        "api-key": api_key,
    }


def signed(
    params: Mapping[str, str], secret: str, method: str = "md5hash", now: float | None = None
) -> dict[str, str]:
    """`params` with Vonage's `timestamp`, `nonce` and `sig` added."""
    return sign_params(params, secret, method, time.time() if now is None else now)


def deliver(
    url: str,
    params: Mapping[str, str],
    *,
    how: str = "form",
    client: httpx2.Client | None = None,
) -> httpx2.Response:
    """Send a webhook the way Vonage may: `how` is "form" (POST), "json" (POST) or "get".

    `client` may be a Starlette TestClient (then `url` may be a path) or any httpx2 client;
    without one, a short-lived client is used.
    """
    if client is None:
        with httpx2.Client(timeout=10) as own:
            return deliver(url, params, how=how, client=own)
    if how == "get":
        return client.get(url, params=dict(params))
    if how == "json":
        return client.post(
            url, content=json.dumps(dict(params)), headers={"Content-Type": "application/json"}
        )
    if how == "form":
        return client.post(
            url,
            content=urlencode(dict(params)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    raise ValueError(f"how must be 'form', 'json' or 'get', not {how!r}")
