"""VonageSender: texts through Vonage's SMS API; the only module that imports the vonage SDK.

The SDK (4.9.1) is synchronous and has traps this module exists to contain:

- It blocks, so every call runs in a bounded thread pool of our own, never on the event loop.
- It re-POSTs a request whose connection dropped after sending (`RemoteDisconnected`), up to
  `pool_maxsize` times, which can send a text several times. We give each worker thread its own
  client with `pool_maxsize=1`, which makes that loop a single attempt, and `max_retries=0`, so
  urllib3 never retries either (it would retry a sent POST after a TLS error).
- Its timeout defaults to "wait forever"; we always pass a whole number of seconds.
- The SMS API answers HTTP 200 with a per-part `status`; the SDK raises `SmsError` with the code
  only in its text, and `PartialFailureError` with the decoded body when a long text was split.
- At DEBUG it logs the `Authorization` header (our key and secret), so its logger is held at INFO.

Outcomes are sorted into `SendError` kinds by what the caller may safely do (see
`collector.sender_types`). The rule: only a failure that provably happened before the request
left this machine, or an explicit refusal from Vonage, may be retried; anything that may have
reached Vonage is 'unknown' and must never be resent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
import urllib3.exceptions
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client import HttpRequestError
from vonage_sms import PartialFailureError, SmsError, SmsMessage, SmsResponse

from collector.sender_types import ErrorKind, SendError, SendResult
from collector.settings import Settings
from collector.sms_encoding import analyze

log = logging.getLogger(__name__)

DEFAULT_REST_HOST = "rest.nexmo.com"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # used with fullmatch
MAX_CLIENT_REF = 40  # Vonage's documented limit (the SDK allows 100)
MAX_CALLBACK = 100  # the SDK's limit for `callback`
THROTTLE_WAIT = 1.0  # seconds; Vonage's default rate is 30 requests/s per key

# SMS API `status` → (kind, invalid_number). Codes and meanings: Vonage's SMS API spec (x-errors).
STATUS_KINDS: dict[str, tuple[ErrorKind, bool]] = {
    "1": ("retry", False),  # Throttled
    "2": ("permanent", False),  # Missing parameters: a bug on our side, resending won't help
    "3": ("permanent", False),  # Invalid parameters
    "4": ("account", False),  # Invalid credentials
    # Internal error: Vonage refused the text (no message-id), and says to retry.
    "5": ("retry", False),
    "6": ("permanent", True),  # Invalid message: unroutable, e.g. an unrecognised number prefix
    "7": ("permanent", True),  # Number barred: this number may not receive texts
    "8": ("account", False),  # Partner account barred (suspended)
    "9": ("account", False),  # Partner quota violation: not enough credit
    "10": ("retry", False),  # Too many existing binds
    "11": ("account", False),  # Account not enabled for the HTTP SMS API
    "12": ("permanent", False),  # Message too long
    "14": ("account", False),  # Invalid signature: configuration
    # Invalid sender address: depends on the sender *and* the destination country (e.g. an
    # alphanumeric sender to North America), so it fails this text, not every text.
    "15": ("permanent", False),
    "22": ("permanent", False),  # Invalid network code
    "23": ("account", False),  # Invalid callback URL: SMSR_PUBLIC_URL, same for every text
    "29": ("account", False),  # Non-whitelisted destination: demo account
    "32": ("account", False),  # Signature and API secret disallowed: configuration
    "33": ("permanent", True),  # Number de-activated
}
RETRY_AFTER: dict[str, float] = {"1": THROTTLE_WAIT, "5": 5.0, "10": 5.0}


class VonageSender:
    """Sends through `POST https://{VONAGE_REST_HOST}/sms/json` with Basic auth.

    `max_workers` bounds the threads (and so the TCP connections) used for sending; `timeout`
    is the connect and read timeout in whole seconds. `currency` is the account's billing
    currency, reported with prices: the SMS API does not say it.
    """

    name = "vonage"

    def __init__(
        self,
        settings: Settings,
        max_workers: int = 8,
        timeout: int = 10,
        currency: str | None = None,
    ) -> None:
        if not settings.vonage_api_key or not settings.vonage_api_secret:
            raise ValueError("VonageSender needs VONAGE_API_KEY and VONAGE_API_SECRET")
        if not isinstance(timeout, int) or timeout < 1:
            raise ValueError("timeout must be a whole number of seconds, at least 1")
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        host = settings.vonage_rest_host or DEFAULT_REST_HOST
        if "/" in host:
            raise ValueError(
                f"VONAGE_REST_HOST={host!r} must be host[:port], without scheme or path"
            )
        self._api_key = settings.vonage_api_key
        self._api_secret = str(settings.vonage_api_secret)
        self._default_sender = settings.vonage_from
        self._options = HttpClientOptions(
            rest_host=host,
            timeout=timeout,
            pool_connections=1,
            pool_maxsize=1,  # bounds the SDK's RemoteDisconnected re-POST loop to one attempt
            max_retries=0,  # urllib3 may retry a sent POST after some errors: never let it
        )
        self._currency = currency
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="vonage-send")
        self._local = threading.local()
        self._clients: list[Vonage] = []
        self._clients_lock = threading.Lock()
        self._closed = False
        _keep_sdk_debug_quiet()

    async def send(
        self,
        *,
        to: str,
        sender: str | None,
        text: str,
        client_ref: str,
        callback_url: str | None,
    ) -> SendResult:
        """Send one text; raise `SendError` when it was not (wholly) accepted.

        The request runs in a worker thread. If the awaiting task is cancelled, the request may
        still complete: treat a cancelled send as outcome 'unknown'.
        """
        if self._closed:
            raise RuntimeError("VonageSender is closed")
        message = self._message(
            to=to, sender=sender, text=text, client_ref=client_ref, callback_url=callback_url
        )
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._send_blocking, message)
        except SendError as exc:
            log.warning(
                "vonage send failed: kind=%s code=%s client_ref=%s: %s",
                exc.kind,
                exc.code,
                client_ref,
                exc.message,
            )
            raise
        log.info(
            "vonage accepted client_ref=%s parts=%d ids=%s",
            client_ref,
            result.parts,
            ",".join(result.message_ids),
        )
        return result

    async def close(self) -> None:
        """Wait for sends in flight (bounded by the timeout), then close every connection."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _message(
        self, *, to: str, sender: str | None, text: str, client_ref: str, callback_url: str | None
    ) -> SmsMessage:
        """Build and check the request on the event loop, so bad input never costs a thread."""
        if not E164.fullmatch(to):
            raise SendError(
                "permanent", "invalid_number", "not an E.164 number", invalid_number=True
            )
        from_ = (sender or self._default_sender or "").strip()
        if not from_:
            raise SendError(
                "account", "no_sender", "no sender: set VONAGE_FROM or the site's sender"
            )
        if not text:
            raise SendError("permanent", "empty_text", "the text is empty")
        if len(client_ref) > MAX_CLIENT_REF:
            raise SendError(
                "permanent", "invalid_request", f"client_ref longer than {MAX_CLIENT_REF}"
            )
        if callback_url is not None and len(callback_url) > MAX_CALLBACK:
            raise SendError(
                "account",
                "callback_too_long",
                f"receipt callback URL longer than {MAX_CALLBACK} characters; "
                "shorten SMSR_PUBLIC_URL",
            )
        return SmsMessage(
            to=to[1:],
            from_=from_.removeprefix("+"),
            text=text,
            type="unicode" if analyze(text).name == "UCS-2" else "text",
            client_ref=client_ref,
            status_report_req=True,
            callback=callback_url,
        )

    def _client(self) -> Vonage:
        """This worker thread's own client: one connection, so the SDK can't re-POST."""
        client: Vonage | None = getattr(self._local, "client", None)
        if client is None:
            auth = Auth(api_key=self._api_key, api_secret=self._api_secret)
            client = Vonage(auth, self._options)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _send_blocking(self, message: SmsMessage) -> SendResult:
        """Runs in a worker thread: one request, its outcome as a result or a SendError."""
        try:
            response = self._client().sms.send(message)
        except PartialFailureError as exc:
            raise _partial_failure(exc.response, self._currency) from None
        except SmsError as exc:
            raise _refused(_status_from_text(str(exc)), _error_text(str(exc))) from None
        except HttpRequestError as exc:
            raise _http_error(exc.response) from None
        except requests.RequestException as exc:
            raise _transport_error(exc) from None
        except Exception as exc:  # a malformed answer: the request did reach Vonage
            raise SendError(
                "unknown", "bad_response", f"unreadable answer ({type(exc).__name__})"
            ) from None
        return _result(response, self._currency)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            close_sdk_client(client)


def close_sdk_client(client: Vonage) -> None:
    """Close a client's connections now. The SDK has no close(), and `Session.close()` alone
    doesn't do it with urllib3 2.7 (its PoolManager no longer closes the pools it forgets, and
    the SDK's `last_response` keeps the last socket alive)."""
    session = client.http_client._session
    for adapter in session.adapters.values():
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        for key in list(pools.keys()) if pools is not None else ():
            pool = pools.get(key)
            if pool is not None:
                pool.close()
    session.close()


def _result(response: SmsResponse, currency: str | None) -> SendResult:
    return _accepted([m.model_dump(by_alias=False) for m in response.messages], currency)


def _accepted(parts: Sequence[Mapping[str, Any]], currency: str | None) -> SendResult:
    """Result of the accepted parts; keys as in the SDK's model or as on the wire."""

    def field(part: Mapping[str, Any], name: str) -> Any:
        return part.get(name, part.get(name.replace("_", "-")))

    prices = [_decimal(field(p, "message_price")) for p in parts]
    known = [price for price in prices if price is not None]
    balances = [
        b for b in (_decimal(field(p, "remaining_balance")) for p in parts) if b is not None
    ]
    return SendResult(
        message_ids=tuple(str(field(p, "message_id")) for p in parts if field(p, "message_id")),
        parts=len(parts),
        # A price we can't read for one part makes the total unknown, not smaller.
        price=sum(known, Decimal(0)) if known and len(known) == len(prices) else None,
        currency=currency,
        remaining_balance=min(balances) if balances else None,
        network=next((str(field(p, "network")) for p in parts if field(p, "network")), None),
    )


def _partial_failure(body: Mapping[str, Any], currency: str | None) -> SendError:
    """A long text some of whose parts were refused.

    The accepted parts went out and are billed, so resending the text would duplicate them:
    this is never 'retry' (nor 'account', which would keep the text for a later resend). It is
    'permanent' with `sent` holding the accepted parts, so their receipts still match. If the
    refusal was account-level (e.g. credit ran out mid-text), the next send reports it as such.
    When no part was accepted, it is an ordinary refusal of the first part's status.
    """
    parts = list(body.get("messages") or [])
    ok = [p for p in parts if str(p.get("status")) == "0"]
    failed = [p for p in parts if str(p.get("status")) != "0"]
    first = failed[0] if failed else {}
    status, text = str(first.get("status", "")), str(first.get("error-text", ""))
    if not ok:
        return _refused(status, text)
    refused = _refused(status, text)
    return SendError(
        "permanent",
        status,
        f"{len(ok)} of {len(parts)} parts accepted; the rest refused with status {status} "
        f"({text}); not resending",
        invalid_number=refused.invalid_number,
        sent=_accepted(ok, currency),
    )


def _refused(status: str, error_text: str) -> SendError:
    """An explicit refusal by the SMS API (HTTP 200, non-zero status): the text was not sent."""
    kind, invalid_number = STATUS_KINDS.get(status, ("permanent", False))
    return SendError(
        kind,
        status or "unknown_status",
        f"Vonage status {status}: {error_text}" if error_text else f"Vonage status {status}",
        invalid_number=invalid_number,
        retry_after=RETRY_AFTER.get(status),
    )


def _http_error(response: requests.Response) -> SendError:
    """An HTTP error status from the host (the SMS API itself answers 200, even to refusals)."""
    code = response.status_code
    message = f"HTTP {code} from Vonage"
    if code == 429:
        return SendError("retry", "http_429", message, retry_after=_retry_after(response))
    if code >= 500:  # a gateway or server error: Vonage may have taken the text
        return SendError("unknown", f"http_{code}", message)
    if code in (401, 403, 404):  # credentials, or VONAGE_REST_HOST is not the SMS API
        return SendError("account", f"http_{code}", message)
    return SendError("permanent", f"http_{code}", message)


def _transport_error(exc: requests.RequestException) -> SendError:
    """Retry only what provably failed before the request was written to the socket."""
    name = type(exc).__name__
    if _never_sent(exc):
        return SendError("retry", "connect_failed", f"could not reach Vonage ({name})")
    if isinstance(exc, requests.Timeout):
        return SendError("unknown", "timeout", "no answer from Vonage in time; may have been sent")
    return SendError("unknown", "connection_lost", f"connection lost ({name}); may have been sent")


def _never_sent(exc: BaseException) -> bool:
    """True for failures while connecting: refused, DNS, connect timeout, certificate rejected."""
    for cause in _causes(exc):
        if isinstance(cause, urllib3.exceptions.ConnectTimeoutError):  # incl. NewConnectionError
            return True
        if isinstance(cause, ssl.SSLCertVerificationError):  # the handshake precedes the request
            return True
    return isinstance(exc, requests.ConnectTimeout)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps: causes, contexts, urllib3 `reason`s and exception args."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None))
        stack.extend(e for e in (*linked, *current.args) if isinstance(e, BaseException))


def _status_from_text(text: str) -> str:
    """The SDK's SmsError carries the status only in its text: '... error code 1: Throttled'."""
    match = re.search(r"error code (\d+)", text)
    return match.group(1) if match else ""


def _error_text(text: str) -> str:
    return text.partition(": ")[2]


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a numeric `Retry-After`, kept within an hour; None when absent or a date."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), 3600.0) if math.isfinite(seconds) else None


def _keep_sdk_debug_quiet() -> None:
    """The SDK logs request headers (our Basic credentials) at DEBUG: never let it.

    The level is pinned on the SDK's own logger, so turning the root logger to DEBUG later
    (SMSR_LOG_LEVEL=debug) doesn't turn it back on.
    """
    sdk_log = logging.getLogger("vonage")
    if sdk_log.level < logging.INFO:  # NOTSET (0) inherits, so it is pinned too
        sdk_log.setLevel(logging.INFO)
