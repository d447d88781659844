"""The interface every SMS sender implements, and the two outcomes of a send.

Kept apart from any provider so the scheduler, the console sender and the Vonage sender agree on
one vocabulary: a `SendResult`, or a `SendError` whose `kind` tells the caller whether it may try
again. Getting `kind` wrong either loses texts (no retry when one was safe) or sends them twice
(a retry after the provider may already have accepted the text), so each kind is defined by what
the caller may do, not by what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

ErrorKind = Literal["retry", "permanent", "account", "unknown"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("retry", "permanent", "account", "unknown")


@dataclass(frozen=True)
class SendResult:
    """What the provider accepted: one id per part, so receipts (one per part) can be matched."""

    message_ids: tuple[str, ...]  # provider ids, one per part
    parts: int
    price: Decimal | None  # total price of all parts as the provider reports it
    currency: str | None  # e.g. "EUR"; None when unknown
    remaining_balance: Decimal | None = None  # account balance after this send, when reported
    network: str | None = None  # recipient's network (MCCMNC), when reported


class SendError(Exception):
    """A send that did not fully succeed; `kind` says what the caller may do next.

    kind: 'retry' (throttled, or failed before the request could reach the provider: safe to
    retry with backoff), 'permanent' (this message/number can never succeed: invalid or barred
    number, etc.), 'account' (account-level: bad credentials, no credit, demo whitelist: pause all
    sending), 'unknown' (the request may have reached the provider: NEVER retry; reconcile by
    client_ref/receipts).

    `invalid_number` marks a number that can never receive our texts (the contact becomes
    undeliverable). `retry_after` is a suggested wait in seconds for 'retry' and 'account'.
    `sent` is set when some parts of a long text were accepted and others refused: those parts
    went out and were billed, so the text must not be sent again.
    """

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str,
        invalid_number: bool = False,
        retry_after: float | None = None,
        sent: SendResult | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"SendError kind must be one of {ERROR_KINDS}, not {kind!r}")
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.code = code
        self.message = message
        self.invalid_number = invalid_number
        self.retry_after = retry_after
        self.sent = sent

    def __repr__(self) -> str:
        return f"SendError(kind={self.kind!r}, code={self.code!r}, message={self.message!r})"


class Sender(Protocol):
    """Sends one text. `to` is E.164 with a leading '+'; `sender` None means the default sender."""

    name: str

    async def send(
        self,
        *,
        to: str,
        sender: str | None,
        text: str,
        client_ref: str,
        callback_url: str | None,
    ) -> SendResult: ...

    async def close(self) -> None: ...
