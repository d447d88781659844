"""What an automation may say: its fields checked one by one and together, and its defaults.

Rules, from the contract ("Automations and sending") and issue 4:
- `trigger` is a built-in (`cart_abandoned`, `form_abandoned`, `pricing_viewed`) or any event
  name `[a-z0-9_]{1,40}`.
- `goals: null` means the trigger's defaults (`default_goals`); a given list replaces them, `[]`
  included. Besides event names, the token `cart_emptied` (an emptied cart) fits any trigger;
  `same_form_submit` only `form_abandoned`, the one trigger with a form, so that it can never
  silently match nothing.
- `min_cart_value` only applies to `cart_abandoned`.
- Freshness: `max_age_seconds` must exceed `delay_seconds`. For the built-in triggers, which all
  text about an abandonment, it is at most 48 hours (the carriers' rule); a custom event trigger
  may wait longer (delay up to 30 days, freshness up to 31 days).
"""

from __future__ import annotations

import re
from typing import Any

from collector import site_fields as f
from collector.errors import BadRequest
from collector.rules import BUILT_IN_TRIGGERS, GOAL_TOKENS

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


def validate(data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """All column values for a create, or the changed ones for a partial update of `current`
    (the automation's values as `Automation.columns()` gives them).

    Cross-field rules are checked on the result of the change, so a PATCH of one field cannot
    leave the automation in a state a create would refuse.
    """
    f.check_field_names(
        data,
        editable=EDITABLE,
        read_only=READ_ONLY,
        required=REQUIRED,
        creating=current is None,
        what="automations",
    )
    cols: dict[str, Any] = {}
    if "site_id" in data:
        cols["site_id"] = f.check_int(data["site_id"], "site_id", minimum=1, maximum=2**62)
        if current is not None and cols["site_id"] != current["site_id"]:
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
    before = current if current is not None else _defaults()
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
    if "same_form_submit" in (state["goals"] or ()) and trigger != "form_abandoned":
        raise BadRequest(
            f"goal 'same_form_submit' needs the form_abandoned trigger, not {trigger!r}",
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
