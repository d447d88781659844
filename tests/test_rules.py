"""Trigger occurrences from a contact's events: what starts, extends and ends one."""

from __future__ import annotations

import itertools
from typing import Any

from collector.rules import Event, Rule, default_goals, occurrences, relevant_event_names

_ids = itertools.count(1)


def ev(name: str, at: int, path: str = "/", **props: Any) -> Event:
    n = next(_ids)
    return Event(n, f"u{n}", name, at, path, props)


def cart(at: int, value: float = 48, path: str = "/cart") -> Event:
    items = [{"id": "tee", "qty": 1, "price": value}] if value else []
    return ev("cart_update", at, path, items=items, value=value, currency="USD")


CART = Rule("cart_abandoned", default_goals("cart_abandoned"))


def test_a_filled_cart_is_one_open_occurrence_due_from_its_latest_change() -> None:
    first, second = cart(100), cart(200, value=60)
    [occurrence] = occurrences(CART, [second, first])
    assert occurrence.open
    assert occurrence.key == first.uid
    assert occurrence.latest == second


def test_purchase_or_emptied_cart_ends_it_and_a_new_cart_is_a_new_occurrence() -> None:
    filled, bought = cart(100), ev("purchase", 150, value=48)
    refilled, emptied = cart(300), cart(400, value=0)
    first, second = occurrences(CART, [filled, bought, refilled, emptied])
    assert (first.ended_by, first.ended_at) == ("converted", 150)
    assert (second.ended_by, second.key) == ("cart_emptied", refilled.uid)


def test_min_cart_value_and_path_pattern_filter_trigger_events() -> None:
    rule = Rule("cart_abandoned", default_goals("cart_abandoned"), "/shop/*", 50)
    assert occurrences(rule, [cart(100, value=20, path="/shop/cart")]) == []
    assert occurrences(rule, [cart(100, value=80, path="/blog/x")]) == []
    [occurrence] = occurrences(rule, [cart(100, value=80, path="/shop/cart")])
    assert occurrence.open


def test_form_abandoned_is_per_form_and_ends_with_that_forms_submit() -> None:
    rule = Rule("form_abandoned", default_goals("form_abandoned"))
    quote_start, news_start = ev("form_start", 100, f="quote"), ev("form_start", 110, f="news")
    news_submit = ev("form_submit", 120, f="news")
    quote, news = occurrences(rule, [quote_start, news_start, news_submit])
    assert quote.open and quote.form == "quote"
    assert news.ended_by == "converted"


def test_pricing_and_custom_triggers_with_configured_goals() -> None:
    pricing = Rule("pricing_viewed", default_goals("pricing_viewed"))
    views = [ev("pricing_view", 100), ev("pricing_view", 200)]
    [occurrence] = occurrences(pricing, views)
    assert occurrence.latest.at == 200
    custom = Rule("demo_requested", ("meeting_booked",))
    asked, booked = ev("demo_requested", 100), ev("meeting_booked", 150)
    [done] = occurrences(custom, [asked, booked, ev("purchase", 160)])
    assert done.ended_by == "converted" and done.ended_at == 150
    assert occurrences(custom, [ev("purchase", 100)]) == []


def test_a_configured_goal_list_replaces_the_defaults() -> None:
    rule = Rule("cart_abandoned", ("checkout_start",))
    filled, bought = cart(100), ev("purchase", 150)
    [occurrence] = occurrences(rule, [filled, bought])
    assert occurrence.open  # purchase is no longer a goal
    [ended] = occurrences(rule, [filled, ev("checkout_start", 160)])
    assert ended.ended_by == "converted"


def test_relevant_event_names() -> None:
    assert relevant_event_names([CART]) == {"cart_update", "purchase"}
    form = Rule("form_abandoned", default_goals("form_abandoned"))
    assert relevant_event_names([form]) == {"form_start", "form_submit"}
