"""Automations end to end through the real app: events in, planned rows, checks, texts out.

The automations' clock is injected (real time plus an offset the test moves), so a 15-minute
delay or a night in the recipient's time zone passes without sleeping.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.settings import Settings

from automation_support import add_automation, add_template
from support import DESKTOP_UA, ORIGIN, beacon, event, post

PHONE = "+14155552671"  # a valid US number: America/Los_Angeles


class Clock:
    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return int(time.time() * 1000) + self.offset_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    settings = replace(settings, public_url="https://sms.example.com")
    with TestClient(create_app(settings, clock=clock), headers={"User-Agent": DESKTOP_UA}) as c:
        yield c


def services(client: TestClient) -> Any:
    return client.app_state["services"]


def run_pass(client: TestClient) -> None:
    """One planner pass and one scheduler pass, as the background tasks do; then wait (bounded)
    for a hand-off the background scheduler may have started meanwhile to be recorded."""
    svc = services(client)
    client.portal.call(svc.planner.plan_once)
    client.portal.call(svc.scheduler.dispatch_due)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(
        m["status"] == "sending" or m["claimed_at"] is not None
        for m in messages(Settings(db=svc.settings.db))
    ):
        time.sleep(0.02)


def messages(settings: Settings) -> list[dict[str, Any]]:
    conn = sqlite3.connect(settings.db)
    conn.row_factory = sqlite3.Row
    rows = [
        dict(r)
        for r in conn.execute("select * from messages where kind = 'automation' order by id")
    ]
    conn.close()
    return rows


def decisions(settings: Settings, message_id: int) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(settings.db)
    rows = conn.execute(
        "select decision, reason from message_log where message_id = ? order by id", (message_id,)
    ).fetchall()
    conn.close()
    return rows


@pytest.fixture
def shop(app_client: TestClient, admin: dict) -> dict[str, Any]:
    """A site texting at any hour without double opt-in, a template and a cart automation."""
    site = app_client.post(
        "/api/v1/sites",
        json={
            "name": "Shop",
            "origins": [ORIGIN],
            "double_opt_in": False,
            "send_window": {"start": "00:00", "end": "24:00"},
        },
        headers=admin,
    ).json()
    template = add_template(
        app_client,
        admin,
        site,
        body="Hi {{ contact.first_name }}, your cart misses you: {{ link }}",
    )
    automation = add_automation(app_client, admin, site, template, trigger="cart_abandoned")
    return {"site": site, "template": template, "automation": automation}


def opt_in_and_fill_cart(client: TestClient, site: dict, value: float = 48.0) -> None:
    optin = event("optin", p={"phone": PHONE, "first_name": "Ann", "consent_text": "Text me"})
    assert post(client, beacon(site, optin)).status_code == 202
    cart(client, site, value)


def cart(client: TestClient, site: dict, value: float, **fields: Any) -> None:
    items = [{"id": "tee", "name": "Tee", "qty": 1, "price": value}] if value else []
    props = {"items": items, "value": value, "currency": "USD", "url": f"{ORIGIN}/cart"}
    assert post(client, beacon(site, event("cart_update", p=props, **fields))).status_code == 202


def test_abandoned_cart_gets_one_text_after_the_delay(
    app_client: TestClient,
    shop: dict,
    settings: Settings,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opt_in_and_fill_cart(app_client, shop["site"])
    run_pass(app_client)
    [scheduled] = messages(settings)
    assert scheduled["status"] == "scheduled"
    assert scheduled["to_number"] == PHONE
    delay = shop["automation"]["delay_seconds"] * 1000
    assert scheduled["due_at"] - scheduled["created_at"] == pytest.approx(delay, abs=2000)

    run_pass(app_client)
    assert messages(settings)[0]["status"] == "scheduled"  # not due yet

    clock.offset_ms = delay + 1000
    run_pass(app_client)
    run_pass(app_client)
    [sent] = messages(settings)
    assert sent["status"] == "sent"
    assert sent["body"].startswith("Hi Ann, your cart misses you: https://sms.example.com/r/")
    assert sent["body"].endswith("Reply STOP to opt out")  # first text from this site
    out = capsys.readouterr().out
    assert out.count("[sms]") == 1 and "Hi Ann" in out
    assert [d for d, _ in decisions(settings, sent["id"])] == ["scheduled", "sent"]


def test_purchase_before_due_cancels(
    app_client: TestClient, shop: dict, settings: Settings
) -> None:
    opt_in_and_fill_cart(app_client, shop["site"])
    run_pass(app_client)
    assert (
        post(app_client, beacon(shop["site"], event("purchase", p={"value": 48}))).status_code
        == 202
    )
    run_pass(app_client)
    [cancelled] = messages(settings)
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "converted")


def test_emptied_cart_cancels_and_a_changed_cart_moves_the_due_time(
    app_client: TestClient, shop: dict, settings: Settings
) -> None:
    opt_in_and_fill_cart(app_client, shop["site"])
    run_pass(app_client)
    first_due = messages(settings)[0]["due_at"]
    cart(app_client, shop["site"], 60.0, t=int(time.time() * 1000) + 5000)
    run_pass(app_client)
    [moved] = messages(settings)
    assert moved["status"] == "scheduled" and moved["due_at"] == pytest.approx(
        first_due + 5000, abs=1500
    )
    cart(app_client, shop["site"], 0, t=int(time.time() * 1000) + 6000)
    run_pass(app_client)
    [cancelled] = messages(settings)
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "cart_emptied")


def test_goal_that_slipped_past_the_planner_skips_at_send_time(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock
) -> None:
    opt_in_and_fill_cart(app_client, shop["site"])
    client_portal = app_client.portal
    client_portal.call(services(app_client).planner.plan_once)
    assert (
        post(app_client, beacon(shop["site"], event("purchase", p={"value": 48}))).status_code
        == 202
    )
    clock.offset_ms = 16 * 60 * 1000
    client_portal.call(services(app_client).scheduler.dispatch_due)  # before the planner sees it
    [skipped] = messages(settings)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "converted")


def test_visitor_who_opts_in_after_the_trigger_is_planned_from_the_trigger_time(
    app_client: TestClient, shop: dict, settings: Settings
) -> None:
    cart(app_client, shop["site"], 30.0)
    run_pass(app_client)
    assert messages(settings) == []  # nobody to text yet
    optin = event("optin", p={"phone": PHONE, "first_name": "Ann", "consent_text": "Text me"})
    assert post(app_client, beacon(shop["site"], optin)).status_code == 202
    run_pass(app_client)
    [scheduled] = messages(settings)
    conn = sqlite3.connect(settings.db)
    [(cart_at,)] = conn.execute("select at from events where name = 'cart_update'").fetchall()
    assert scheduled["due_at"] == cart_at + shop["automation"]["delay_seconds"] * 1000


def test_frequency_cap_and_stop_hold(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock, admin: dict
) -> None:
    site = shop["site"]
    pricing_template = add_template(app_client, admin, site, body="Questions about pricing?")
    add_automation(
        app_client, admin, site, pricing_template, trigger="pricing_viewed", delay_seconds=60
    )
    opt_in_and_fill_cart(app_client, site)
    assert post(app_client, beacon(site, event("pricing_view"))).status_code == 202
    run_pass(app_client)
    assert len(messages(settings)) == 2
    clock.offset_ms = 16 * 60 * 1000
    run_pass(app_client)
    statuses = sorted((m["status"], m["reason"]) for m in messages(settings))
    assert statuses == [("sent", None), ("skipped", "capped")]


def test_outside_the_sending_window_waits_for_the_morning(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock, admin: dict
) -> None:
    site = shop["site"]
    app_client.patch(
        f"/api/v1/sites/{site['id']}",
        json={"send_window": {"start": "09:00", "end": "20:00"}},
        headers=admin,
    )
    opt_in_and_fill_cart(app_client, site)
    run_pass(app_client)
    [row] = messages(settings)
    # Move the clock to 23:00 in Los Angeles on the due day: the text must wait until 09:00.
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    la = ZoneInfo("America/Los_Angeles")
    due_local = datetime.fromtimestamp(row["due_at"] / 1000, la)
    night = due_local.replace(hour=23, minute=0, second=0, microsecond=0)
    if night < due_local:
        night += timedelta(days=1)
    clock.offset_ms = int(night.timestamp() * 1000) - int(time.time() * 1000)
    run_pass(app_client)
    [deferred] = messages(settings)
    assert deferred["status"] == "scheduled"
    morning = (night + timedelta(hours=10)).replace(hour=9, minute=0)
    assert deferred["due_at"] == int(morning.timestamp() * 1000)
    assert decisions(settings, deferred["id"])[-1] == ("deferred", None)
    # A stale trigger (older than max_age at the next window) would be skipped instead.
    assert morning.timestamp() * 1000 - row["due_at"] < shop["automation"]["max_age_seconds"] * 1000
    clock.offset_ms = int(morning.timestamp() * 1000) - int(time.time() * 1000) + 1000
    run_pass(app_client)
    assert messages(settings)[0]["status"] == "sent"


def test_a_broken_template_skips_with_render_error_and_the_scheduler_goes_on(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock
) -> None:
    opt_in_and_fill_cart(app_client, shop["site"])
    run_pass(app_client)
    conn = sqlite3.connect(settings.db)
    with conn:  # a template saved before a check existed, say: rendering fails at send time
        conn.execute("update templates set body = ?", ("{{ cart.value + 'x' }}",))
    conn.close()
    clock.offset_ms = 16 * 60 * 1000
    run_pass(app_client)
    [skipped] = messages(settings)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "render_error")
    log = decisions(settings, skipped["id"])
    assert log[-1] == ("skipped", "render_error")
    assert json.dumps(app_client.get("/healthz").json()) == '{"status": "ok"}'


def prepare_ahead(client: TestClient, clock: Clock, shop: dict, settings: Settings) -> dict:
    """Fill a cart, then move the clock to 5 s before the text is due: it gets prepared."""
    opt_in_and_fill_cart(client, shop["site"])
    client.portal.call(services(client).planner.plan_once)
    clock.offset_ms = shop["automation"]["delay_seconds"] * 1000 - 5000
    client.portal.call(services(client).scheduler.dispatch_due)
    [row] = messages(settings)
    assert row["status"] == "scheduled" and row["prepared_at"] is not None
    assert row["body"].startswith("Hi Ann")
    return row


def test_a_template_edited_after_preparation_is_rendered_again(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock, admin: dict
) -> None:
    prepare_ahead(app_client, clock, shop, settings)
    edited = app_client.patch(
        f"/api/v1/templates/{shop['template']['id']}",
        json={"body": "Still thinking it over, {{ contact.first_name }}? {{ link }}"},
        headers=admin,
    )
    assert edited.status_code == 200
    clock.offset_ms += 6000
    app_client.portal.call(services(app_client).scheduler.dispatch_due)
    [sent] = messages(settings)
    assert sent["status"] == "sent"
    assert sent["body"].startswith("Still thinking it over, Ann?")


def test_a_goal_after_preparation_stops_the_text_at_hand_off(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock
) -> None:
    prepare_ahead(app_client, clock, shop, settings)
    assert (
        post(app_client, beacon(shop["site"], event("purchase", p={"value": 48}))).status_code
        == 202
    )
    clock.offset_ms += 6000
    app_client.portal.call(services(app_client).scheduler.dispatch_due)  # no planner pass first
    [skipped] = messages(settings)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "converted")


def test_stop_after_preparation_stops_the_text(
    app_client: TestClient, shop: dict, settings: Settings, clock: Clock, admin: dict
) -> None:
    row = prepare_ahead(app_client, clock, shop, settings)
    contact = app_client.get(f"/api/v1/contacts/{row['contact_id']}", headers=admin).json()
    opted_out = app_client.patch(
        f"/api/v1/contacts/{contact['id']}", json={"status": "opted_out"}, headers=admin
    )
    assert opted_out.status_code == 200, opted_out.text
    clock.offset_ms += 6000
    app_client.portal.call(services(app_client).scheduler.dispatch_due)
    [stopped] = messages(settings)
    assert stopped["status"] in ("skipped", "cancelled")
    assert stopped["reason"] == "opted_out"
