"""Event names and fields of the public contract, and validation of beacons (wire format v1).

Pure functions: a parsed beacon in, rows for the `events` table out, or `BadRequest` naming the
field. A batch with any bad event is refused whole, so a rejection stores nothing. The format is
documented in docs/wire-format.md.

The snippet sends some things in a compact form, to stay small (event codes, the opt-in form's
fields as a list, a form named by its action); `parse_beacon` rewrites them into the contract's
shape, so everything after it (validation, opt-in screening, link tokens) sees only that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import orjson

from collector.errors import AppError, BadRequest, PayloadTooLarge
from collector.site_fields import path_matches
from collector.sites import Site

WIRE_VERSIONS = (1,)
BUILT_IN = (
    "page_view",
    "pricing_view",
    "form_start",
    "form_submit",
    "cart_update",
    "checkout_start",
    "purchase",
    "optin",
    "sms_click",
)
SERVER_ONLY = frozenset({"sms_click"})
# The snippet's codes for the built-in names (`n` as an integer); custom names are strings.
EVENT_CODES = (
    "page_view",
    "pricing_view",
    "form_start",
    "checkout_start",
    "form_submit",
    "cart_update",
    "purchase",
    "optin",
)
# The events whose p may be compact: page views, and those with p.f, a form's name.
COMPACT_PROPS = frozenset({"page_view", "form_start", "form_submit", "optin"})
# The opt-in form's fields, as the snippet lists them in `p`.
OPTIN_FIELDS = ("phone", "first_name", "consent_text", "f")
CUSTOM_NAME = re.compile(r"^[a-z0-9_]{1,40}$")
PROP_KEY = re.compile(r"^[A-Za-z0-9_]{1,40}$")
ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

MAX_AGE_MS = 7 * 86400 * 1000
MAX_AHEAD_MS = 5 * 60 * 1000
MAX_URL = 2048
MAX_TITLE = 300
MAX_FORM = 100
MAX_CART_ITEMS = 100


@dataclass(frozen=True)
class Beacon:
    site_key: str
    visitor_id: str
    session_id: str
    events: list[dict[str, Any]]


def parse_beacon(body: bytes, max_events: int) -> Beacon:
    """Parse and check the envelope; events are checked by `event_rows` once the site is known."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON", code="malformed") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="malformed")
    if data.get("v") not in WIRE_VERSIONS:
        raise BadRequest(f"unsupported wire format version {data.get('v')!r}", field="v")
    key = data.get("k")
    if not isinstance(key, str) or not 1 <= len(key) <= 64:
        raise BadRequest("site key missing", field="k")
    visitor_id = _id(data.get("vid"), "vid")
    session_id = _id(data.get("sid"), "sid")
    events = data.get("e")
    if not isinstance(events, list) or not events:
        raise BadRequest("e must be a non-empty list of events", field="e")
    if len(events) > max_events:
        raise PayloadTooLarge(
            f"{len(events)} events in one beacon; at most {max_events}", field="e"
        )
    for event in events:
        if type(event) is dict:
            expand_event(event)
    return Beacon(key, visitor_id, session_id, events)


def expand_event(event: dict[str, Any]) -> None:
    """Rewrite the snippet's compact forms of one event in place (docs/wire-format.md); anything
    malformed is left for `event_rows` to refuse. Also cuts `u` to its limit."""
    name = event.get("n")
    if type(name) is int and 0 <= name < len(EVENT_CODES):
        event["n"] = name = EVENT_CODES[name]
    url = event.get("u")
    if type(url) is str and len(url) > MAX_URL:
        event["u"] = url = url[:MAX_URL]
    if type(name) is not str or name not in COMPACT_PROPS:
        return
    props = event.get("p")
    if name == "page_view" and type(props) is dict and ("r" in props or "x" in props):
        # The referrer and the pricing marker ride in p; they are the event's own r and x.
        referrer = props.pop("r", None)
        if referrer and "r" not in event:
            event["r"] = referrer
        event["x"] = props.pop("x", None)
    if name == "optin" and type(props) is list and len(props) == len(OPTIN_FIELDS):
        # From a data-smsr-optin form: the label's text arrives as it is in the page.
        event["p"] = props = dict(zip(OPTIN_FIELDS, props, strict=True))
        text = props["consent_text"]
        if type(text) is str:
            props["consent_text"] = " ".join(text.split())
    if type(props) is dict and name != "page_view":
        form = props.get("f")
        if type(form) is list and len(form) == 1 and type(url) is str:
            # A form without data-smsr-form, id or name: [its action attribute], named by the path.
            action = form[0]
            if action is None or type(action) is str:
                props["f"] = urlsplit(urljoin(url, (action or "").strip())).path or "/"


def event_rows(beacon: Beacon, site: Site, now_ms: int) -> list[tuple[Any, ...]]:
    """Rows for the writer: (site_id, uid, name, visitor, session, url, path, title, props, at, now)."""
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for index, event in enumerate(beacon.events):
        try:
            checked = _checked_event(event, now_ms)
        except AppError as exc:
            # Field names are built only for the event that failed: ingest's hot path formats
            # no strings for the events that pass (bench/ingest, 10 events a beacon).
            where = f"e[{index}]"
            exc.field = f"{where}.{exc.field}" if exc.field else where
            exc.message = (
                f"{where}.{exc.message}" if exc.field != where else f"{where} {exc.message}"
            )
            exc.args = (exc.message,)
            raise
        uid, name, at, url, title, props, path, pricing = checked
        if uid in seen:
            continue
        seen.add(uid)
        row = (site.id, uid, name, beacon.visitor_id, beacon.session_id, url, path, title)
        rows.append((*row, orjson.dumps(props).decode(), at, now_ms))
        if pricing or (
            name == "page_view"
            and site.pricing_paths
            and path_matches(path, list(site.pricing_paths))
        ):
            # The page view's id + "p": an older snippet's own pricing_view collapses into it.
            rows.append((*row[:1], uid + "p", "pricing_view", *row[3:], "{}", at, now_ms))
    return rows


def _checked_event(event: Any, now_ms: int) -> tuple[Any, ...]:
    """One event checked; errors name fields relative to the event (`u`, `p.value`)."""
    if not isinstance(event, dict):
        raise BadRequest("must be an object")
    uid = _id(event.get("i"), "i")
    name = event.get("n")
    if not isinstance(name, str) or not CUSTOM_NAME.match(name):
        raise BadRequest(f"n {name!r} is not an event name", field="n")
    if name in SERVER_ONLY:
        raise BadRequest(f"n {name!r} is recorded by the collector only", field="n")
    at = event.get("t")
    if isinstance(at, bool) or not isinstance(at, int):
        raise BadRequest("t must be milliseconds since the epoch", field="t")
    if not now_ms - MAX_AGE_MS <= at <= now_ms + MAX_AHEAD_MS:
        raise BadRequest("t is more than 7 days old or 5 minutes ahead", code="stale", field="t")
    url = _text(event.get("u"), "u", MAX_URL)
    title = _text(event.get("ti"), "ti", MAX_TITLE, optional=True, cut=True)
    props = PROP_CHECKS.get(name, _custom_props)(event.get("p") or {}, "p")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadRequest("u must be an http(s) URL", field="u")
    pricing = False
    if name == "page_view":
        referrer = _text(event.get("r"), "r", MAX_URL, optional=True, cut=True)
        if referrer:
            props["referrer"] = referrer
        if "utm_" in parts.query:
            props.update((k, v[:200]) for k, v in parse_qsl(parts.query) if k in UTM_KEYS)
        pricing = event.get("x")  # a data-smsr-intent="pricing" element was on the page
        if pricing not in (None, 0, 1):
            raise BadRequest("x must be 1, 0 or absent", field="x")
    return uid, name, at, url, title, props, parts.path or "/", pricing


def _id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not ID.match(value):
        raise BadRequest(f"{field} must be 8-64 characters of A-Z a-z 0-9 _ -", field=field)
    return value


def _text(
    value: Any, field: str, max_len: int, optional: bool = False, cut: bool = False
) -> str | None:
    """A string within max_len; longer is refused (413), or cut to it with `cut`."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not optional and not value):
        raise BadRequest(f"{field} must be a string", field=field)
    if len(value) > max_len:
        if cut:
            return value[:max_len]
        raise PayloadTooLarge(f"{field} is longer than {max_len} characters", field=field)
    return value


def _number(value: Any, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
        raise BadRequest(f"{field} must be a non-negative number", field=field)
    return value


def _currency(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not CURRENCY.match(value.upper()):
        raise BadRequest(f"{field} must be an ISO 4217 code like USD", field=field)
    return value.upper()


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be an object", field=field)
    return value


def _no_props(value: Any, field: str) -> dict[str, Any]:
    _object(value, field)
    return {}


def _page_view_props(value: Any, field: str) -> dict[str, Any]:
    token = _object(value, field).get("c")
    return {"c": _text(token, f"{field}.c", 200)} if token is not None else {}


def _form_props(value: Any, field: str) -> dict[str, Any]:
    return {"f": _text(_object(value, field).get("f"), f"{field}.f", MAX_FORM, True, cut=True)}


def _cart_props(value: Any, field: str) -> dict[str, Any]:
    value = _object(value, field)
    items = value.get("items")
    if not isinstance(items, list):
        raise BadRequest(
            f"{field}.items must be a list (empty means the cart was emptied)",
            field=f"{field}.items",
        )
    if len(items) > MAX_CART_ITEMS:
        raise PayloadTooLarge(
            f"{field}.items has more than {MAX_CART_ITEMS} items", field=f"{field}.items"
        )
    clean = []
    for n, item in enumerate(items):
        where = f"{field}.items[{n}]"
        item = _object(item, where)
        item_id = item.get("id")
        if isinstance(item_id, (int, float)) and not isinstance(item_id, bool):
            item_id = str(item_id)
        clean.append(
            {
                "id": _text(item_id, f"{where}.id", 100, optional=True),
                "name": _text(item.get("name"), f"{where}.name", 200, optional=True),
                "qty": _number(item.get("qty", 1), f"{where}.qty"),
                "price": _number(item.get("price", 0), f"{where}.price"),
            }
        )
    total = value.get("value")
    if total is None:
        total = round(sum(i["qty"] * i["price"] for i in clean), 2)
    return {
        "items": clean,
        "value": _number(total, f"{field}.value"),
        "currency": _currency(value.get("currency"), f"{field}.currency"),
        "url": _text(value.get("url"), f"{field}.url", MAX_URL, optional=True),
    }


def _purchase_props(value: Any, field: str) -> dict[str, Any]:
    value = _object(value, field)
    order_id = value.get("order_id")
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        order_id = str(order_id)
    return {
        "order_id": _text(order_id, f"{field}.order_id", 100, optional=True),
        "value": _number(value.get("value", 0), f"{field}.value"),
        "currency": _currency(value.get("currency"), f"{field}.currency"),
    }


def _optin_props(value: Any, field: str) -> dict[str, Any]:
    value = _object(value, field)
    return {
        "phone": _text(value.get("phone"), f"{field}.phone", 40),
        "first_name": _text(value.get("first_name"), f"{field}.first_name", 100, optional=True),
        "consent_text": _text(
            value.get("consent_text"), f"{field}.consent_text", 1000, optional=True
        ),
        "f": _text(value.get("f"), f"{field}.f", MAX_FORM, optional=True, cut=True),
    }


def _custom_props(value: Any, field: str) -> dict[str, Any]:
    value = _object(value, field)
    if len(value) > 20:
        raise BadRequest(f"{field} has more than 20 properties", field=field)
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if not PROP_KEY.match(key):
            raise BadRequest(f"{field} key {key[:50]!r} is not [A-Za-z0-9_]{{1,40}}", field=field)
        if isinstance(item, str):
            clean[key] = _text(item, f"{field}.{key}", 500)
        elif item is None or isinstance(item, (bool, int, float)):
            clean[key] = item
        else:
            raise BadRequest(
                f"{field}.{key} must be a string, number or boolean", field=f"{field}.{key}"
            )
    return clean


PROP_CHECKS = {
    "page_view": _page_view_props,
    "pricing_view": _no_props,
    "checkout_start": _no_props,
    "form_start": _form_props,
    "form_submit": _form_props,
    "cart_update": _cart_props,
    "purchase": _purchase_props,
    "optin": _optin_props,
}


def check_props(name: str, props: Any, field: str = "props") -> dict[str, Any]:
    """The stored props of event `name`, checked as a beacon's are (for server-side events)."""
    return PROP_CHECKS.get(name, _custom_props)(props if props is not None else {}, field)
