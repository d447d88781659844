"""Which trigger occurrences an automation sees in a contact's events (pure functions).

An occurrence is a run of trigger events that nothing has ended yet: a cart that was filled and
not emptied or bought, a form started and not submitted, pricing pages viewed without a purchase.
It is named by its first event's id, so planning the same history again finds the same
occurrence, and its due time counts from its latest event (a changed cart starts the delay again).
A goal event, an emptied cart or (for forms) the same form's submit ends it.

Built-in triggers and their default goals are the contract's:
    cart_abandoned  the last cart_update has items       purchase, an emptied cart
    form_abandoned  a form_start without a form_submit   form_submit of that form
    pricing_viewed  a pricing_view                       purchase
    any event name  that event                           as configured
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from collector.site_fields import path_matches

BUILT_IN_TRIGGERS = ("cart_abandoned", "form_abandoned", "pricing_viewed")
GOAL_TOKENS = ("cart_emptied", "same_form_submit")
DEFAULT_GOALS = {
    "cart_abandoned": ("purchase", "cart_emptied"),
    "form_abandoned": ("same_form_submit",),
    "pricing_viewed": ("purchase",),
}
TRIGGER_EVENT = {
    "cart_abandoned": "cart_update",
    "form_abandoned": "form_start",
    "pricing_viewed": "pricing_view",
}


def default_goals(trigger: str) -> tuple[str, ...]:
    return DEFAULT_GOALS.get(trigger, ())


def trigger_event_name(trigger: str) -> str:
    """The event that starts or extends an occurrence of `trigger`."""
    return TRIGGER_EVENT.get(trigger, trigger)


@dataclass(frozen=True)
class Event:
    id: int
    uid: str
    name: str
    at: int
    path: str
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """The parts of an automation that decide what counts as an occurrence."""

    trigger: str
    goals: tuple[str, ...]
    path_pattern: str | None = None
    min_cart_value: float | None = None


def rule_of(
    trigger: str, goals_json: str | None, path_pattern: str | None, min_cart_value: float | None
) -> Rule:
    """The rule of an `automations` row: saved goals (JSON) or, when null, the defaults."""
    goals = tuple(json.loads(goals_json)) if goals_json is not None else default_goals(trigger)
    return Rule(trigger, goals, path_pattern, min_cart_value)


@dataclass
class Occurrence:
    key: str  # the first event's uid
    first: Event
    latest: Event  # due = latest.at + delay
    form: str | None = None
    ended_by: str | None = None  # None while open; else 'converted' or 'cart_emptied'
    ended_at: int | None = None

    @property
    def open(self) -> bool:
        return self.ended_by is None


def _cart_has_items(event: Event) -> bool:
    return bool(event.props.get("items"))


def _qualifies(rule: Rule, event: Event) -> bool:
    if rule.path_pattern and not path_matches(event.path, [rule.path_pattern]):
        return False
    if rule.min_cart_value is not None and event.name == "cart_update":
        try:
            return float(event.props.get("value") or 0) >= rule.min_cart_value
        except (TypeError, ValueError):
            return False
    return True


def occurrences(rule: Rule, events: Iterable[Event]) -> list[Occurrence]:
    """Every occurrence of `rule` in `events` (any order), oldest first, open or ended."""
    found: list[Occurrence] = []
    open_by_form: dict[str | None, Occurrence] = {}
    starts = trigger_event_name(rule.trigger)
    named_goals = {g for g in rule.goals if g not in GOAL_TOKENS}

    def end(occurrence: Occurrence, reason: str, at: int) -> None:
        occurrence.ended_by, occurrence.ended_at = reason, at
        open_by_form.pop(occurrence.form, None)

    for event in sorted(events, key=lambda e: (e.at, e.id)):
        form = event.props.get("f") if rule.trigger == "form_abandoned" else None
        if event.name == "cart_update" and not _cart_has_items(event):
            if rule.trigger == "cart_abandoned" or "cart_emptied" in rule.goals:
                for occurrence in list(open_by_form.values()):
                    end(occurrence, "cart_emptied", event.at)
            continue
        if event.name == starts and _qualifies(rule, event):
            current = open_by_form.get(form)
            if current is None:
                current = Occurrence(event.uid, event, event, form)
                open_by_form[form] = current
                found.append(current)
            else:
                current.latest = event
            continue
        if event.name == "form_submit" and "same_form_submit" in rule.goals:
            submitted = open_by_form.get(event.props.get("f"))
            if submitted is not None and rule.trigger == "form_abandoned":
                end(submitted, "converted", event.at)
        if event.name in named_goals:
            for occurrence in list(open_by_form.values()):
                end(occurrence, "converted", event.at)
    return found


def relevant_event_names(rules: Iterable[Rule]) -> set[str]:
    """The event names that can start, extend or end an occurrence of any of `rules`."""
    names: set[str] = set()
    for rule in rules:
        names.add(trigger_event_name(rule.trigger))
        names.update(g for g in rule.goals if g not in GOAL_TOKENS)
        if rule.trigger == "cart_abandoned" or "cart_emptied" in rule.goals:
            names.add("cart_update")
        if "same_form_submit" in rule.goals:
            names.add("form_submit")
    return names
