"""Automations: what they may say (validation), how they are stored, and what the scheduler reads.

Rules, from the contract ("Automations and sending") and issue 4:
- `trigger` is a built-in (`cart_abandoned`, `form_abandoned`, `pricing_viewed`) or any event
  name `[a-z0-9_]{1,40}`.
- `goals: null` means the trigger's defaults (`default_goals`); a given list replaces them, `[]`
  included. The tokens `cart_emptied` and `same_form_submit` are reserved for the triggers they
  make sense for (`cart_abandoned`, `form_abandoned`), so they can never silently match nothing.
- `min_cart_value` only applies to `cart_abandoned`.
- Freshness: `max_age_seconds` must exceed `delay_seconds`. For the built-in triggers, which all
  text about an abandonment, it is at most 48 hours (the carriers' rule); a custom event trigger
  may wait longer (delay up to 30 days, freshness up to 31 days).
- Turning an automation off or deleting it cancels its scheduled texts (`automation_off`) in the
  same transaction, with a `message_log` row for each.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from collector import site_fields as f
from collector.db import Database, ms_to_iso
from collector.errors import BadRequest, NotFound
from collector.message_templates import get_template, site_exists

__all__ = [
    "Automation",
    "cancel_for_automation",
    "default_goals",
    "get_automation",
    "get_template",
    "load_active_automations",
]

BUILT_IN_TRIGGERS = ("cart_abandoned", "form_abandoned", "pricing_viewed")
DEFAULT_GOALS: dict[str, tuple[str, ...]] = {
    "cart_abandoned": ("purchase", "cart_emptied"),
    "form_abandoned": ("same_form_submit",),
    "pricing_viewed": ("purchase",),
}
GOAL_TOKENS = {"cart_emptied": "cart_abandoned", "same_form_submit": "form_abandoned"}
EVENT_NAME = re.compile(r"^[a-z0-9_]{1,40}$")
DEFAULT_DELAY_SECONDS = 900
MAX_DELAY_SECONDS = 30 * 86400
DEFAULT_MAX_AGE_SECONDS = 172800
MAX_AGE_BUILT_IN = 172800  # the carriers' 48 h freshness rule for abandonment texts
MAX_AGE_CUSTOM = 31 * 86400
MIN_MAX_AGE_SECONDS = 60
MAX_GOALS = 20
EDITABLE = (
    "site_id",
    "name",
    "trigger",
    "path_pattern",
    "min_cart_value",
    "delay_seconds",
    "goals",
    "template_id",
    "active",
    "max_age_seconds",
)
READ_ONLY = ("id", "effective_goals", "created_at", "updated_at")
REQUIRED = ("site_id", "name", "trigger", "template_id")


def now_ms() -> int:
    return int(time.time() * 1000)


def default_goals(trigger: str) -> list[str]:
    """The goals that end `trigger`'s automation when none are configured."""
    return list(DEFAULT_GOALS.get(trigger, ()))


@dataclass(frozen=True)
class Automation:
    id: int
    site_id: int
    name: str
    trigger: str
    path_pattern: str | None
    min_cart_value: float | None
    delay_seconds: int
    goals: tuple[str, ...]  # resolved: the configured list, else the trigger's defaults
    configured_goals: tuple[str, ...] | None  # as saved; None means the defaults
    template_id: int
    active: bool
    max_age_seconds: int
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Automation:
        configured = None if row["goals"] is None else tuple(json.loads(row["goals"]))
        return cls(
            id=row["id"],
            site_id=row["site_id"],
            name=row["name"],
            trigger=row["trigger"],
            path_pattern=row["path_pattern"],
            min_cart_value=row["min_cart_value"],
            delay_seconds=row["delay_seconds"],
            goals=configured if configured is not None else tuple(default_goals(row["trigger"])),
            configured_goals=configured,
            template_id=row["template_id"],
            active=bool(row["active"]),
            max_age_seconds=row["max_age_seconds"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def columns(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "name": self.name,
            "trigger": self.trigger,
            "path_pattern": self.path_pattern,
            "min_cart_value": self.min_cart_value,
            "delay_seconds": self.delay_seconds,
            "goals": None if self.configured_goals is None else list(self.configured_goals),
            "template_id": self.template_id,
            "active": self.active,
            "max_age_seconds": self.max_age_seconds,
        }

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.columns(),
            "effective_goals": list(self.goals),
            "created_at": ms_to_iso(self.created_at),
            "updated_at": ms_to_iso(self.updated_at),
        }


def _trigger(value: Any) -> str:
    if not isinstance(value, str) or not EVENT_NAME.match(value):
        raise BadRequest(
            f"trigger {value!r} must be {', '.join(BUILT_IN_TRIGGERS)} or an event name "
            "of 1-40 characters a-z 0-9 _",
            field="trigger",
        )
    return value


def _path_pattern(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 200:
        raise BadRequest(
            f"path_pattern {value!r} must be a path glob starting with / (e.g. /cart*), "
            "at most 200 characters, or null",
            field="path_pattern",
        )
    return value


def _min_cart_value(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
        raise BadRequest(
            f"min_cart_value {value!r} must be a number >= 0 (major units) or null",
            field="min_cart_value",
        )
    return float(value)


def _goals(value: Any) -> list[str] | None:
    if value is None:
        return None
    goals = f.check_list(value, "goals", max_len=MAX_GOALS)
    for goal in goals:
        if not isinstance(goal, str) or not EVENT_NAME.match(goal):
            raise BadRequest(
                f"goal {goal!r} must be an event name (a-z 0-9 _, 1-40 characters) "
                f"or one of {', '.join(GOAL_TOKENS)}",
                field="goals",
            )
    return list(dict.fromkeys(goals))


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{field} must be true or false, not {value!r}", field=field)
    return value


def validate(data: dict[str, Any], current: Automation | None) -> dict[str, Any]:
    """All column values for a create, or the changed ones for a partial update.

    Cross-field rules are checked on the result of the change, so a PATCH of one field cannot
    leave the automation in a state a create would refuse.
    """
    read_only = sorted(set(data) & set(READ_ONLY))
    if read_only:
        raise BadRequest(f"{read_only[0]} is read-only", field=read_only[0])
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r}; automations have {', '.join(EDITABLE)}",
            field=unknown[0],
        )
    if current is None:
        for name in REQUIRED:
            if name not in data:
                raise BadRequest(f"{name} is required", field=name)
    cols: dict[str, Any] = {}
    if "site_id" in data:
        cols["site_id"] = f.check_int(data["site_id"], "site_id", minimum=1, maximum=2**62)
        if current is not None and cols["site_id"] != current.site_id:
            raise BadRequest(
                "site_id cannot change; create the automation on the other site",
                field="site_id",
            )
    if "name" in data:
        cols["name"] = f.check_string(data["name"], "name", max_len=200)
    if "trigger" in data:
        cols["trigger"] = _trigger(data["trigger"])
    if "path_pattern" in data:
        cols["path_pattern"] = _path_pattern(data["path_pattern"])
    if "min_cart_value" in data:
        cols["min_cart_value"] = _min_cart_value(data["min_cart_value"])
    if "delay_seconds" in data:
        cols["delay_seconds"] = f.check_int(
            data["delay_seconds"], "delay_seconds", maximum=MAX_DELAY_SECONDS
        )
    if "goals" in data:
        cols["goals"] = _goals(data["goals"])
    if "template_id" in data:
        cols["template_id"] = f.check_int(
            data["template_id"], "template_id", minimum=1, maximum=2**62
        )
    if "active" in data:
        cols["active"] = _bool(data["active"], "active")
    if "max_age_seconds" in data:
        cols["max_age_seconds"] = f.check_int(
            data["max_age_seconds"],
            "max_age_seconds",
            minimum=MIN_MAX_AGE_SECONDS,
            maximum=MAX_AGE_CUSTOM,
        )
    before = current.columns() if current else _defaults()
    _check_together({**before, **cols}, cols)
    return {**before, **cols} if current is None else cols


def _defaults() -> dict[str, Any]:
    return {
        "path_pattern": None,
        "min_cart_value": None,
        "delay_seconds": DEFAULT_DELAY_SECONDS,
        "goals": None,
        "active": True,
        "max_age_seconds": DEFAULT_MAX_AGE_SECONDS,
    }


def _check_together(state: dict[str, Any], given: dict[str, Any]) -> None:
    trigger = state["trigger"]
    if state["min_cart_value"] is not None and trigger != "cart_abandoned":
        raise BadRequest(
            f"min_cart_value applies to cart_abandoned only, not {trigger!r}; set it to null",
            field="min_cart_value" if "min_cart_value" in given else "trigger",
        )
    for goal in state["goals"] or ():
        if goal in GOAL_TOKENS and GOAL_TOKENS[goal] != trigger:
            raise BadRequest(
                f"goal {goal!r} belongs to the {GOAL_TOKENS[goal]} trigger, not {trigger!r}",
                field="goals" if "goals" in given else "trigger",
            )
    limit = MAX_AGE_BUILT_IN if trigger in BUILT_IN_TRIGGERS else MAX_AGE_CUSTOM
    if state["max_age_seconds"] > limit:
        raise BadRequest(
            f"max_age_seconds {state['max_age_seconds']} is over {limit}: a {trigger} text "
            "answers an abandonment, which carriers allow to be texted about for 48 hours",
            field="max_age_seconds" if "max_age_seconds" in given else "trigger",
        )
    if state["max_age_seconds"] <= state["delay_seconds"]:
        raise BadRequest(
            f"max_age_seconds ({state['max_age_seconds']}) must be greater than delay_seconds "
            f"({state['delay_seconds']}), or no text could ever be fresh enough to send",
            field="max_age_seconds" if "max_age_seconds" in given else "delay_seconds",
        )


def _row_values(cols: dict[str, Any]) -> dict[str, Any]:
    values = dict(cols)
    if "goals" in values:
        values["goals"] = None if values["goals"] is None else json.dumps(values["goals"])
    if "active" in values:
        values["active"] = int(values["active"])
    return values


async def _check_template(conn: aiosqlite.Connection, template_id: int, site_id: int) -> None:
    cursor = await conn.execute("select site_id from templates where id = ?", (template_id,))
    row = await cursor.fetchone()
    if row is None:
        raise BadRequest(f"no template with id {template_id}", field="template_id")
    if row["site_id"] != site_id:
        raise BadRequest(
            f"template {template_id} belongs to site {row['site_id']}, not site {site_id}",
            field="template_id",
        )


async def create_automation(db: Database, data: dict[str, Any]) -> Automation:
    cols = validate(data, None)
    now = now_ms()
    async with db.transaction() as conn:
        if not await site_exists(conn, cols["site_id"]):
            raise BadRequest(f"no site with id {cols['site_id']}", field="site_id")
        await _check_template(conn, cols["template_id"], cols["site_id"])
        values = {**_row_values(cols), "created_at": now, "updated_at": now}
        names = ", ".join(values)  # keys come from EDITABLE and the two times, never from input
        marks = ", ".join(f":{name}" for name in values)
        cursor = await conn.execute(f"insert into automations ({names}) values ({marks})", values)
        automation_id = cursor.lastrowid
    assert automation_id is not None
    return await get_automation(db, automation_id)


async def update_automation(db: Database, automation_id: int, data: dict[str, Any]) -> Automation:
    """A partial update; turning it off cancels its scheduled texts in the same transaction."""
    current = await get_automation(db, automation_id)
    cols = validate(data, current)
    cols.pop("site_id", None)
    if not cols:
        return current
    now = now_ms()
    async with db.transaction() as conn:
        if "template_id" in cols:
            await _check_template(conn, cols["template_id"], current.site_id)
        values = _row_values(cols)
        assignments = ", ".join(f"{name} = :{name}" for name in values)  # names from EDITABLE
        cursor = await conn.execute(
            f"update automations set {assignments}, updated_at = :now where id = :id",
            {**values, "now": now, "id": automation_id},
        )
        if not cursor.rowcount:
            raise NotFound(f"no automation with id {automation_id}")
        if cols.get("active") is False:
            await cancel_scheduled(conn, automation_id, "automation_off", now, "turned off")
    return await get_automation(db, automation_id)


async def delete_automation(db: Database, automation_id: int) -> int:
    """Delete it and cancel its scheduled texts; returns how many texts were cancelled."""
    now = now_ms()
    async with db.transaction() as conn:
        cancelled = await cancel_scheduled(conn, automation_id, "automation_off", now, "deleted")
        cursor = await conn.execute("delete from automations where id = ?", (automation_id,))
        if not cursor.rowcount:
            raise NotFound(f"no automation with id {automation_id}")
    return cancelled


async def cancel_scheduled(
    conn: aiosqlite.Connection,
    automation_id: int,
    reason: str,
    now: int,
    detail: str | None = None,
) -> int:
    """Cancel the automation's texts still `scheduled`, inside the caller's transaction."""
    await conn.execute(
        "insert into message_log (message_id, at, decision, reason, detail) "
        "select id, ?, 'cancelled', ?, ? from messages "
        "where automation_id = ? and kind = 'automation' and status = 'scheduled'",
        (now, reason, detail, automation_id),
    )
    cursor = await conn.execute(
        "update messages set status = 'cancelled', reason = ?, updated_at = ? "
        "where automation_id = ? and kind = 'automation' and status = 'scheduled'",
        (reason, now, automation_id),
    )
    return cursor.rowcount


async def cancel_for_automation(
    db: Database, automation_id: int, reason: str = "automation_off", now: int | None = None
) -> int:
    """Cancel the automation's scheduled texts, each with a `message_log` row; returns how many."""
    async with db.transaction() as conn:
        return await cancel_scheduled(
            conn, automation_id, reason, now if now is not None else now_ms()
        )


async def get_automation(db: Database, automation_id: int) -> Automation:
    row = await db.fetchone("select * from automations where id = ?", (automation_id,))
    if row is None:
        raise NotFound(f"no automation with id {automation_id}")
    return Automation.from_row(row)


async def list_automations(
    db: Database, site_id: int | None, limit: int, offset: int
) -> tuple[list[Automation], int]:
    where = "where site_id = :site_id" if site_id is not None else ""
    params = {"site_id": site_id, "limit": limit, "offset": offset}
    rows = await db.fetchall(
        f"select * from automations {where} order by id limit :limit offset :offset", params
    )
    total = await db.fetchone(f"select count(*) as n from automations {where}", params)
    return [Automation.from_row(r) for r in rows], total["n"] if total else 0


async def load_active_automations(db: Database, site_id: int | None = None) -> list[Automation]:
    """The automations that are on, of one site or (site_id None) of every site, by id."""
    rows = await db.fetchall(
        "select * from automations where active = 1 and (:site_id is null or site_id = :site_id) "
        "order by id",
        {"site_id": site_id},
    )
    return [Automation.from_row(r) for r in rows]
