"""What the automation tests share: rows the consent code owns, written with plain SQL.

Contacts and messages are made by the consent and sending code in the product; these tests only
need them to exist, so they insert them directly into the test's real SQLite file.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.testclient import TestClient

from collector.settings import Settings

_numbers = itertools.count(2671)


def now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def sql(settings: Settings) -> Iterator[sqlite3.Connection]:
    """A connection to the test's database file; commits on leaving."""
    conn = sqlite3.connect(settings.db, timeout=5)
    conn.row_factory = sqlite3.Row
    conn.execute("pragma foreign_keys = on")
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def add_contact(
    settings: Settings, site_id: int, status: str = "active", first_name: str | None = "Ada"
) -> int:
    now = now_ms()
    with sql(settings) as conn:
        cursor = conn.execute(
            "insert into contacts (site_id, phone, first_name, status, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, ?)",
            (site_id, f"+1415555{next(_numbers):04d}", first_name, status, now, now),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def add_message(settings: Settings, *, site_id: int, contact_id: int, **columns: Any) -> int:
    """A `messages` row; `columns` override kind, status, reason, automation_id and the times."""
    now = now_ms()
    row: dict[str, Any] = {
        "site_id": site_id,
        "contact_id": contact_id,
        "automation_id": None,
        "kind": "automation",
        "to_number": "+14155550000",
        "body": "Hi",
        "status": "scheduled",
        "reason": None,
        "due_at": now,
        "sent_at": None,
        "delivered_at": None,
        "client_ref": f"ref-{now}-{next(_numbers)}",
        "created_at": now,
        "updated_at": now,
    }
    row.update(columns)
    names = ", ".join(row)
    marks = ", ".join(f":{name}" for name in row)
    with sql(settings) as conn:
        cursor = conn.execute(f"insert into messages ({names}) values ({marks})", row)
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def add_event(
    settings: Settings, site_id: int, name: str, props: str = "{}", **columns: Any
) -> int:
    now = now_ms()
    row: dict[str, Any] = {
        "site_id": site_id,
        "uid": f"evt-{now}-{next(_numbers)}",
        "name": name,
        "props": props,
        "at": now,
        "received_at": now,
    }
    row.update(columns)
    names = ", ".join(row)
    marks = ", ".join(f":{name}" for name in row)
    with sql(settings) as conn:
        cursor = conn.execute(f"insert into events ({names}) values ({marks})", row)
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def add_template(
    client: TestClient, admin: dict[str, str], site: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    body = {"site_id": site["id"], "name": "Cart reminder", "body": "Hi {{ link }}", **fields}
    response = client.post("/api/v1/templates", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def add_automation(
    client: TestClient,
    admin: dict[str, str],
    site: dict[str, Any],
    template: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "site_id": site["id"],
        "name": "Cart",
        "trigger": "cart_abandoned",
        "template_id": template["id"],
        **fields,
    }
    response = client.post("/api/v1/automations", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())
