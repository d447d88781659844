"""`/api/v1/automations` through the real app, and what collector.automations gives the scheduler."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from collector import automation_fields, automations
from collector.db import Database
from collector.settings import Settings

from automation_support import add_automation, add_contact, add_message, add_template, sql
from support import ORIGIN


@pytest.fixture
def template(client: TestClient, admin: dict, site: dict) -> dict[str, Any]:
    return add_template(client, admin, site)


def create(client: TestClient, admin: dict, **body: Any) -> Any:
    return client.post("/api/v1/automations", json=body, headers=admin)


def test_create_with_contract_defaults(
    client: TestClient, admin: dict, site: dict, template: dict
) -> None:
    response = create(
        client,
        admin,
        site_id=site["id"],
        name="Cart reminder",
        trigger="cart_abandoned",
        template_id=template["id"],
    )
    assert response.status_code == 201
    automation = response.json()
    assert automation == {
        "id": automation["id"],
        "site_id": site["id"],
        "name": "Cart reminder",
        "trigger": "cart_abandoned",
        "path_pattern": None,
        "min_cart_value": None,
        "delay_seconds": 900,
        "goals": None,
        "effective_goals": ["purchase", "cart_emptied"],
        "template_id": template["id"],
        "active": True,
        "max_age_seconds": 172800,
        "created_at": automation["created_at"],
        "updated_at": automation["updated_at"],
    }
    url = f"/api/v1/automations/{automation['id']}"
    assert client.get(url, headers=admin).json() == automation


@pytest.mark.parametrize(
    ("trigger", "goals"),
    [
        ("cart_abandoned", ["purchase", "cart_emptied"]),
        ("form_abandoned", ["same_form_submit"]),
        ("pricing_viewed", ["purchase"]),
        ("trial_started", []),
    ],
)
def test_each_trigger_has_its_default_goals(
    client: TestClient, admin: dict, site: dict, template: dict, trigger: str, goals: list[str]
) -> None:
    automation = add_automation(client, admin, site, template, trigger=trigger)
    assert automation["effective_goals"] == goals
    assert list(automations.default_goals(trigger)) == goals


def test_given_goals_replace_the_defaults(
    client: TestClient, admin: dict, site: dict, template: dict
) -> None:
    automation = add_automation(
        client, admin, site, template, goals=["checkout_start", "purchase", "checkout_start"]
    )
    assert automation["goals"] == ["checkout_start", "purchase"]
    assert automation["effective_goals"] == ["checkout_start", "purchase"]
    none = add_automation(client, admin, site, template, goals=[])
    assert (none["goals"], none["effective_goals"]) == ([], [])
    url = f"/api/v1/automations/{none['id']}"
    back = client.patch(url, json={"goals": None}, headers=admin).json()
    assert (back["goals"], back["effective_goals"]) == (None, ["purchase", "cart_emptied"])
    pricing = add_automation(
        client, admin, site, template, trigger="pricing_viewed", goals=["purchase", "cart_emptied"]
    )
    assert pricing["effective_goals"] == ["purchase", "cart_emptied"]
    form = add_automation(client, admin, site, template, trigger="form_abandoned")
    url = f"/api/v1/automations/{form['id']}"
    response = client.patch(url, json={"goals": ["same_form_submit", "purchase"]}, headers=admin)
    assert response.json()["effective_goals"] == ["same_form_submit", "purchase"]
    response = client.patch(url, json={"trigger": "signup"}, headers=admin)
    assert response.status_code == 400 and response.json()["error"]["field"] == "trigger"


def test_all_fields_round_trip(client: TestClient, admin: dict, site: dict, template: dict) -> None:
    automation = add_automation(
        client,
        admin,
        site,
        template,
        path_pattern="/shop/*",
        min_cart_value=25,
        delay_seconds=0,
        active=False,
        max_age_seconds=3600,
    )
    assert automation["path_pattern"] == "/shop/*"
    assert automation["min_cart_value"] == 25.0
    assert automation["delay_seconds"] == 0
    assert automation["active"] is False
    assert automation["max_age_seconds"] == 3600


def test_custom_triggers_may_wait_longer_than_48_hours(
    client: TestClient, admin: dict, site: dict, template: dict
) -> None:
    week = 7 * 86400
    automation = add_automation(
        client,
        admin,
        site,
        template,
        trigger="trial_started",
        delay_seconds=week,
        max_age_seconds=week + 86400,
    )
    assert automation["delay_seconds"] == week
    response = create(
        client,
        admin,
        site_id=site["id"],
        name="x",
        trigger="trial_started",
        template_id=template["id"],
        delay_seconds=week,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "delay_seconds"
    assert (
        "max_age_seconds (172800) must be greater than delay_seconds (604800)" in error["message"]
    )


BAD = [
    ({"trigger": "Cart Abandoned"}, "trigger", "event name"),
    ({"trigger": "x" * 41}, "trigger", "event name"),
    ({"trigger": None}, "trigger", "event name"),
    ({"path_pattern": "cart*"}, "path_pattern", "starting with /"),
    ({"path_pattern": 5}, "path_pattern", "starting with /"),
    ({"min_cart_value": -1}, "min_cart_value", ">= 0"),
    ({"min_cart_value": True}, "min_cart_value", ">= 0"),
    ({"min_cart_value": "10"}, "min_cart_value", ">= 0"),
    ({"trigger": "pricing_viewed", "min_cart_value": 10}, "min_cart_value", "cart_abandoned only"),
    ({"delay_seconds": -1}, "delay_seconds", "0 to 2592000"),
    ({"delay_seconds": 30 * 86400 + 1}, "delay_seconds", "0 to 2592000"),
    ({"delay_seconds": 1.5}, "delay_seconds", "whole number"),
    ({"delay_seconds": True}, "delay_seconds", "whole number"),
    ({"delay_seconds": 7200, "max_age_seconds": 3600}, "max_age_seconds", "greater than"),
    ({"delay_seconds": 3600, "max_age_seconds": 3600}, "max_age_seconds", "greater than"),
    ({"max_age_seconds": 172801}, "max_age_seconds", "48 hours"),
    ({"max_age_seconds": 59}, "max_age_seconds", "60 to"),
    ({"max_age_seconds": 32 * 86400, "trigger": "signup"}, "max_age_seconds", "60 to 2678400"),
    ({"goals": "purchase"}, "goals", "list"),
    ({"goals": ["Purchase"]}, "goals", "event name"),
    ({"goals": [1]}, "goals", "event name"),
    ({"goals": ["e"] * 21}, "goals", "list of 0 to 20"),
    ({"goals": ["same_form_submit"]}, "goals", "needs the form_abandoned trigger"),
    ({"active": "yes"}, "active", "true or false"),
    ({"name": ""}, "name", "non-empty"),
    ({"name": "x" * 201}, "name", "200"),
    ({"template_id": 999}, "template_id", "no template"),
    ({"template_id": "1"}, "template_id", "whole number"),
    ({"site_id": 999}, "site_id", "no site"),
    ({"site_id": 0}, "site_id", "whole number"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"effective_goals": []}, "effective_goals", "read-only"),
    ({"id": 5}, "id", "read-only"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD)
def test_bad_automations_are_refused_with_the_field(
    client: TestClient,
    admin: dict,
    site: dict,
    template: dict,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    body = {"site_id": site["id"], "name": "x", "trigger": "cart_abandoned"}
    body["template_id"] = template["id"]
    body.update(change)
    response = create(client, admin, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]


@pytest.mark.parametrize("missing", ["site_id", "name", "trigger", "template_id"])
def test_required_fields(
    client: TestClient, admin: dict, site: dict, template: dict, missing: str
) -> None:
    body = {"site_id": site["id"], "name": "x", "trigger": "cart_abandoned"}
    body["template_id"] = template["id"]
    del body[missing]
    response = create(client, admin, **body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == missing


def test_the_template_must_belong_to_the_same_site(
    client: TestClient, admin: dict, site: dict
) -> None:
    other = client.post(
        "/api/v1/sites", json={"name": "Other", "origins": [ORIGIN]}, headers=admin
    ).json()
    theirs = add_template(client, admin, other)
    response = create(
        client, admin, site_id=site["id"], name="x", trigger="signup", template_id=theirs["id"]
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "template_id"
    assert f"belongs to site {other['id']}" in response.json()["error"]["message"]


def test_patch_is_partial_and_checks_the_result(
    client: TestClient, admin: dict, site: dict, template: dict
) -> None:
    automation = add_automation(client, admin, site, template, min_cart_value=10)
    url = f"/api/v1/automations/{automation['id']}"
    renamed = client.patch(url, json={"name": "New name"}, headers=admin).json()
    assert renamed["name"] == "New name"
    assert renamed["min_cart_value"] == 10.0
    # A PATCH cannot leave a state a create would refuse, and says which field to fix.
    response = client.patch(url, json={"trigger": "pricing_viewed"}, headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "trigger"
    both = client.patch(
        url, json={"trigger": "pricing_viewed", "min_cart_value": None}, headers=admin
    )
    assert both.status_code == 200
    assert both.json()["effective_goals"] == ["purchase"]
    response = client.patch(url, json={"delay_seconds": 172800}, headers=admin)
    assert response.status_code == 400 and response.json()["error"]["field"] == "delay_seconds"
    response = client.patch(url, json={"site_id": site["id"] + 1}, headers=admin)
    assert response.status_code == 400 and response.json()["error"]["field"] == "site_id"
    response = client.patch(url, json={"template_id": 999}, headers=admin)
    assert response.status_code == 400 and response.json()["error"]["field"] == "template_id"
    assert client.patch(url, json={}, headers=admin).json() == client.get(url, headers=admin).json()


def test_list_is_paginated_and_filters_by_site(
    client: TestClient, admin: dict, site: dict, template: dict
) -> None:
    other = client.post(
        "/api/v1/sites", json={"name": "Other", "origins": [ORIGIN]}, headers=admin
    ).json()
    for n in range(3):
        add_automation(client, admin, site, template, name=f"a{n}")
    add_automation(client, admin, other, add_template(client, admin, other), name="theirs")
    page = client.get("/api/v1/automations?per_page=2", headers=admin).json()
    assert (page["page"], page["total"], [a["name"] for a in page["items"]]) == (1, 4, ["a0", "a1"])
    theirs = client.get(f"/api/v1/automations?site_id={other['id']}", headers=admin).json()
    assert [a["name"] for a in theirs["items"]] == ["theirs"]


def _statuses(settings: Settings, ids: list[int]) -> list[tuple[str, str | None]]:
    with sql(settings) as conn:
        return [
            tuple(conn.execute("select status, reason from messages where id = ?", (i,)).fetchone())
            for i in ids
        ]


def _log(settings: Settings, message_id: int) -> list[tuple[str, str | None, str | None]]:
    with sql(settings) as conn:
        rows = conn.execute(
            "select decision, reason, detail from message_log where message_id = ? order by id",
            (message_id,),
        ).fetchall()
    return [tuple(r) for r in rows]


def test_turning_off_cancels_scheduled_texts_only(
    client: TestClient, admin: dict, site: dict, template: dict, settings: Settings
) -> None:
    automation = add_automation(client, admin, site, template)
    other = add_automation(client, admin, site, template, name="other")
    contact = add_contact(settings, site["id"])
    mine = {"site_id": site["id"], "contact_id": contact, "automation_id": automation["id"]}
    scheduled = add_message(settings, **mine)
    in_flight = add_message(settings, **mine, status="sending")
    sent = add_message(settings, **mine, status="sent")
    theirs = add_message(
        settings, site_id=site["id"], contact_id=contact, automation_id=other["id"]
    )
    url = f"/api/v1/automations/{automation['id']}"
    response = client.patch(url, json={"active": False}, headers=admin)
    assert response.status_code == 200 and response.json()["active"] is False
    assert _statuses(settings, [scheduled, in_flight, sent, theirs]) == [
        ("cancelled", "automation_off"),
        ("sending", None),
        ("sent", None),
        ("scheduled", None),
    ]
    assert _log(settings, scheduled) == [("cancelled", "automation_off", "turned off")]
    assert _log(settings, sent) == []
    # Turning it on again does not bring cancelled texts back.
    assert client.patch(url, json={"active": True}, headers=admin).json()["active"] is True
    assert _statuses(settings, [scheduled]) == [("cancelled", "automation_off")]


def test_delete_cancels_scheduled_texts_and_keeps_their_history(
    client: TestClient, admin: dict, site: dict, template: dict, settings: Settings
) -> None:
    automation = add_automation(client, admin, site, template)
    contact = add_contact(settings, site["id"])
    message = add_message(
        settings, site_id=site["id"], contact_id=contact, automation_id=automation["id"]
    )
    url = f"/api/v1/automations/{automation['id']}"
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404
    assert client.delete(url, headers=admin).status_code == 404
    assert _statuses(settings, [message]) == [("cancelled", "automation_off")]
    assert _log(settings, message) == [("cancelled", "automation_off", "deleted")]
    with sql(settings) as conn:
        row = conn.execute("select automation_id from messages where id = ?", (message,)).fetchone()
    assert row["automation_id"] == automation["id"]


def test_deleting_the_site_takes_its_automations_and_templates(
    client: TestClient, admin: dict, site: dict, template: dict
) -> None:
    automation = add_automation(client, admin, site, template)
    assert client.delete(f"/api/v1/sites/{site['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/automations/{automation['id']}", headers=admin).status_code == 404
    assert client.get(f"/api/v1/templates/{template['id']}", headers=admin).status_code == 404


def test_unknown_ids_bad_ids_and_auth(client: TestClient, admin: dict) -> None:
    assert client.get("/api/v1/automations/42", headers=admin).status_code == 404
    assert client.patch("/api/v1/automations/42", json={}, headers=admin).status_code == 404
    assert client.patch("/api/v1/automations/x", json={}, headers=admin).status_code == 400
    assert client.post("/api/v1/automations", content=b"{", headers=admin).status_code == 400
    assert client.post("/api/v1/automations", json=[1], headers=admin).status_code == 400
    assert client.get("/api/v1/automations").status_code == 401


@pytest.mark.asyncio
async def test_what_the_scheduler_reads(
    client: TestClient, admin: dict, site: dict, template: dict, settings: Settings
) -> None:
    on = add_automation(client, admin, site, template, trigger="form_abandoned", delay_seconds=60)
    add_automation(client, admin, site, template, active=False)
    other = client.post(
        "/api/v1/sites", json={"name": "Other", "origins": [ORIGIN]}, headers=admin
    ).json()
    elsewhere = add_automation(
        client, admin, other, add_template(client, admin, other), goals=["purchase"]
    )
    db = await Database.open(settings.db)
    try:
        [loaded] = await automations.load_active_automations(db, site["id"])
        assert loaded == automations.Automation(
            id=on["id"],
            site_id=site["id"],
            name="Cart",
            trigger="form_abandoned",
            path_pattern=None,
            min_cart_value=None,
            delay_seconds=60,
            goals=("same_form_submit",),
            configured_goals=None,
            template_id=template["id"],
            active=True,
            max_age_seconds=172800,
            created_at=loaded.created_at,
            updated_at=loaded.updated_at,
        )
        everywhere = await automations.load_active_automations(db)
        assert [a.id for a in everywhere] == [on["id"], elsewhere["id"]]
        assert everywhere[1].goals == ("purchase",)
        fetched = await automations.get_template(db, template["id"])
        assert (fetched.site_id, fetched.body) == (site["id"], template["body"])
        contact = add_contact(settings, site["id"])
        message = add_message(
            settings, site_id=site["id"], contact_id=contact, automation_id=on["id"]
        )
        assert await automations.cancel_for_automation(db, on["id"], reason="converted") == 1
        assert await automations.cancel_for_automation(db, on["id"]) == 0
    finally:
        await db.close()
    assert _statuses(settings, [message]) == [("cancelled", "converted")]
    assert _log(settings, message) == [("cancelled", "converted", None)]


def test_openapi_describes_templates_automations_and_metrics(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for name in ("templates", "automations"):
        assert set(paths[f"/{name}"]) == {"get", "post"}
        assert set(paths[f"/{name}/{{id}}"]) >= {"get", "patch", "delete"}
    assert set(paths["/templates/preview"]) == {"post"}
    assert set(paths["/metrics"]) == {"get"}
    schemas = document["components"]["schemas"]
    assert set(automation_fields.EDITABLE) | {"effective_goals"} <= set(
        schemas["Automation"]["properties"]
    )
    assert {"triggered", "revenue", "skipped", "cancelled"} <= set(schemas["Metrics"]["properties"])
