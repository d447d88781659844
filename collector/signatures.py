"""Signed SMS API webhooks (inbound texts and delivery receipts): verify them, and make them.

Vonage's "Signing Messages" algorithm: drop `sig`, sort the remaining parameters by key, replace
every `&` and `=` inside values with `_`, and join them as `&k1=v1&k2=v2` (leading `&`). Then:

- `md5hash` (the dashboard's default, "MD5 hash"): hex MD5 of that string with the secret appended.
- `md5`, `sha1`, `sha256`, `sha512`: hex HMAC of that string, keyed by the secret.

Vonage sends HMAC hex in upper case and MD5 hash hex in lower case, so hex is compared without
regard to case, in constant time. The SDK's `Auth.check_signature` covers the HMAC modes only (and
pops `sig` from the dict it is given), hence this module. A signature proves origin, not
freshness: `verify_webhook` also rejects requests older than 24 hours (the contract: stale is 401)
or dated more than five minutes ahead of our clock.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping

METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
MAX_AGE_SECONDS = 24 * 3600
MAX_FUTURE_SECONDS = 300


def signing_string(params: Mapping[str, str]) -> str:
    """The string Vonage signs: sorted `&key=value` pairs, `sig` left out, `&`/`=` in values as `_`."""
    return "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )


def signature(params: Mapping[str, str], secret: str, method: str) -> str:
    """Lower-case hex signature of `params` (any `sig` in them is ignored)."""
    base = signing_string(params)
    if method == "md5hash":
        return hashlib.md5((base + secret).encode("utf-8")).hexdigest()
    if method in METHODS:
        return hmac.new(secret.encode("utf-8"), base.encode("utf-8"), method).hexdigest()
    raise ValueError(f"unknown signature method {method!r}; use one of {', '.join(METHODS)}")


def sign_params(
    params: Mapping[str, str],
    secret: str,
    method: str,
    timestamp: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """`params` as Vonage sends them when signing is on: with `timestamp`, `nonce` and `sig`.

    A `nonce` already in `params` is kept; otherwise the given one, or a random UUID as Vonage
    uses. HMAC signatures come out upper case and MD5 hash lower case, as Vonage sends them.
    """
    signed = {key: str(value) for key, value in params.items() if key != "sig"}
    signed["timestamp"] = str(int(timestamp))
    signed.setdefault("nonce", nonce if nonce is not None else str(uuid.uuid4()))
    sig = signature(signed, secret, method)
    signed["sig"] = sig if method == "md5hash" else sig.upper()
    return signed


def verify_webhook(params: Mapping[str, str], secret: str, method: str, now: float) -> bool:
    """True when `sig` matches and `timestamp` is at most 24 h old and at most 5 min ahead.

    `params` are all the parameters of the request (query string and body merged), as strings.
    Missing `sig` or `timestamp`, a timestamp that is not a whole number, or an empty secret
    all give False. An unknown `method` raises ValueError: that is configuration, not a forgery.
    """
    if method not in METHODS:
        raise ValueError(f"unknown signature method {method!r}; use one of {', '.join(METHODS)}")
    sig = params.get("sig")
    timestamp = _unix_seconds(params.get("timestamp"))
    if not sig or timestamp is None or not secret:
        return False
    if now - timestamp > MAX_AGE_SECONDS or timestamp - now > MAX_FUTURE_SECONDS:
        return False
    expected = signature(params, secret, method).encode("ascii")
    return hmac.compare_digest(sig.strip().lower().encode("utf-8"), expected)


def _unix_seconds(value: str | None) -> float | None:
    """Vonage sends Unix seconds as a string; milliseconds are accepted too, just in case."""
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number / 1000 if number >= 100_000_000_000 else float(number)
