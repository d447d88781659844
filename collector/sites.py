"""Sites: what a script tag names. Storage, validation of changes, and the ingest lookup cache.

The cache reloads at most once a second when asked, so a site added or changed by the CLI
(another process) takes effect in a running server without a restart.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from collector import site_fields as f
from collector.db import Database, now_iso
from collector.errors import BadRequest, NotFound

CACHE_SECONDS = 1.0

EDITABLE = (
    "name",
    "origins",
    "country",
    "timezone",
    "allowed_countries",
    "sender",
    "attribution_click_seconds",
    "attribution_delivery_seconds",
    "send_window",
    "daily_cap",
    "double_opt_in",
    "help_text",
    "pricing_paths",
)


@dataclass(frozen=True)
class Site:
    id: int
    key: str
    secret: str
    name: str
    origins: tuple[str, ...]
    country: str
    timezone: str
    allowed_countries: tuple[str, ...]
    sender: str | None
    attribution_click_seconds: int
    attribution_delivery_seconds: int
    send_window_start: str
    send_window_end: str
    daily_cap: int
    double_opt_in: bool
    help_text: str | None
    pricing_paths: tuple[str, ...]
    created_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Site:
        values = dict(row)
        for name in ("origins", "allowed_countries", "pricing_paths"):
            values[name] = tuple(json.loads(values[name]))
        values["double_opt_in"] = bool(values["double_opt_in"])
        return cls(**values)

    def effective_help_text(self) -> str:
        return self.help_text or (
            f"{self.name}: cart and offer reminders by text, up to {self.daily_cap} msg/day. "
            "Msg & data rates may apply. Reply STOP to opt out, HELP for help."
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "origins": list(self.origins),
            "country": self.country,
            "timezone": self.timezone,
            "allowed_countries": list(self.allowed_countries),
            "sender": self.sender,
            "attribution_click_seconds": self.attribution_click_seconds,
            "attribution_delivery_seconds": self.attribution_delivery_seconds,
            "send_window": {"start": self.send_window_start, "end": self.send_window_end},
            "daily_cap": self.daily_cap,
            "double_opt_in": self.double_opt_in,
            "help_text": self.effective_help_text(),
            "pricing_paths": list(self.pricing_paths),
            "key": self.key,
            "secret": self.secret,
            "created_at": self.created_at,
        }


def validate(
    data: dict[str, Any], current: Site | None, default_sender: str | None
) -> dict[str, Any]:
    """Column values for a create (`current` None) or a partial update, all fields checked."""
    unknown = set(data) - set(EDITABLE)
    read_only = unknown & {"id", "key", "secret", "created_at"}
    if read_only:
        raise BadRequest(f"{sorted(read_only)[0]} is read-only", field=sorted(read_only)[0])
    if unknown:
        name = sorted(unknown)[0]
        raise BadRequest(f"unknown field {name!r}", field=name)
    if current is None and "name" not in data:
        raise BadRequest("name is required", field="name")
    if current is None and not data.get("origins"):
        raise BadRequest("origins needs at least one URL", field="origins")
    cols: dict[str, Any] = {}
    if "name" in data:
        cols["name"] = f.check_string(data["name"], "name", max_len=200)
    if "origins" in data:
        origins = f.check_list(data["origins"], "origins", min_len=1, max_len=20)
        cols["origins"] = json.dumps(sorted({f.normalize_origin(o) for o in origins}))
    country = current.country if current else "US"
    if "country" in data:
        country = cols["country"] = f.check_country(data["country"])
    if "timezone" in data:
        cols["timezone"] = f.check_timezone(data["timezone"])
    elif current is None:
        cols["timezone"] = f.default_timezone(country)
    if "allowed_countries" in data:
        allowed = f.check_list(data["allowed_countries"], "allowed_countries", min_len=1)
        cols["allowed_countries"] = json.dumps(
            sorted({f.check_country(c, "allowed_countries") for c in allowed})
        )
    elif current is None:
        cols["allowed_countries"] = json.dumps([country])
    if "sender" in data:
        sender = data["sender"]
        cols["sender"] = (
            None if sender in (None, "") else f.check_string(sender, "sender", max_len=15)
        )
    for name in ("attribution_click_seconds", "attribution_delivery_seconds"):
        if name in data:
            cols[name] = f.check_int(data[name], name, maximum=90 * 86400)
    if "send_window" in data:
        cols["send_window_start"], cols["send_window_end"] = f.check_send_window(
            data["send_window"]
        )
    if "daily_cap" in data:
        cols["daily_cap"] = f.check_int(data["daily_cap"], "daily_cap", maximum=100)
    if "help_text" in data:
        help_text = data["help_text"]
        cols["help_text"] = (
            None if help_text in (None, "") else f.check_string(help_text, "help_text", max_len=480)
        )
    if "pricing_paths" in data:
        cols["pricing_paths"] = json.dumps(f.check_pricing_paths(data["pricing_paths"]))

    sender = cols.get("sender", current.sender if current else None)
    alphanumeric = f.is_alphanumeric_sender(sender or default_sender)
    if "double_opt_in" in data:
        if not isinstance(data["double_opt_in"], bool):
            raise BadRequest("double_opt_in must be true or false", field="double_opt_in")
        cols["double_opt_in"] = int(data["double_opt_in"])
    elif current is None:
        cols["double_opt_in"] = int(not alphanumeric)
    double_opt_in = bool(cols.get("double_opt_in", current.double_opt_in if current else 0))
    if double_opt_in and alphanumeric:
        raise BadRequest(
            f"sender {sender or default_sender!r} is alphanumeric and cannot receive the YES "
            "reply; use a phone number as sender or set double_opt_in to false",
            field="double_opt_in",
        )
    return cols


def site_key() -> str:
    """A public site key; never starting with '-' or '_', which a command line takes for an option."""
    while True:
        key = secrets.token_urlsafe(12)
        if key[0].isalnum():
            return key


async def create_site(db: Database, data: dict[str, Any], default_sender: str | None) -> Site:
    cols = validate(data, None, default_sender)
    cols["key"] = site_key()
    cols["secret"] = "ss_" + secrets.token_urlsafe(24)
    cols["created_at"] = now_iso()
    names = ", ".join(cols)  # keys come from EDITABLE and the three above, never from input
    marks = ", ".join(f":{name}" for name in cols)
    async with db.transaction() as conn:
        cursor = await conn.execute(f"insert into sites ({names}) values ({marks})", cols)
        site_id = cursor.lastrowid
    assert site_id is not None
    return await get_site(db, site_id)


async def update_site(
    db: Database, site_id: int, data: dict[str, Any], default_sender: str | None
) -> Site:
    current = await get_site(db, site_id)
    cols = validate(data, current, default_sender)
    if cols:
        assignments = ", ".join(f"{name} = :{name}" for name in cols)
        await db.execute(f"update sites set {assignments} where id = :id", {**cols, "id": site_id})
    return await get_site(db, site_id)


async def delete_site(db: Database, site_id: int) -> None:
    if not await db.execute("delete from sites where id = ?", (site_id,)):
        raise NotFound(f"no site with id {site_id}")


async def get_site(db: Database, site_id: int) -> Site:
    row = await db.fetchone("select * from sites where id = ?", (site_id,))
    if row is None:
        raise NotFound(f"no site with id {site_id}")
    return Site.from_row(row)


async def list_sites(db: Database, limit: int, offset: int) -> tuple[list[Site], int]:
    rows, total = await db.page("sites", {}, "id", limit, offset)
    return [Site.from_row(r) for r in rows], total


class SiteCache:
    """Sites by key and the union of their origins, reloaded at most once a second."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_key: dict[str, Site] = {}
        self.all_origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, force: bool = False) -> None:
        if not force and self._fresh():
            return
        async with self._lock:  # concurrent callers wait for the one reload, not use old data
            if not force and self._fresh():
                return
            rows = await self.db.fetchall("select * from sites")
            sites = [Site.from_row(r) for r in rows]
            self.by_key = {s.key: s for s in sites}
            self.all_origins = frozenset(o for s in sites for o in s.origins)
            self._loaded_at = time.monotonic()

    def _fresh(self) -> bool:
        return time.monotonic() - self._loaded_at < CACHE_SECONDS

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def get(self, key: str) -> Site | None:
        await self.refresh()
        return self.by_key.get(key)
