"""An event answered 202 is in the database, even if the process is killed right after."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import httpx2

from support import ADMIN_TOKEN, DESKTOP_UA, ORIGIN, LiveServer


def make_site(server: LiveServer) -> dict:
    response = httpx2.post(
        f"{server.url}/api/v1/sites",
        json={"name": "Shop", "origins": [ORIGIN]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201
    return response.json()


def send(server: LiveServer, site: dict, event_id: str, client: httpx2.Client | None = None) -> int:
    body = {
        "v": 1,
        "k": site["key"],
        "vid": "visitor-kill",
        "sid": "session-kill",
        "e": [
            {
                "i": event_id,
                "n": "cart_update",
                "t": int(time.time() * 1000),
                "u": f"{ORIGIN}/cart",
                "p": {
                    "items": [{"id": "tee", "qty": 1, "price": 24}],
                    "value": 24,
                    "currency": "USD",
                },
            }
        ],
    }
    poster = client or httpx2
    response = poster.post(
        f"{server.url}/e",
        content=json.dumps(body),
        headers={"Origin": ORIGIN, "Content-Type": "text/plain", "User-Agent": DESKTOP_UA},
    )
    return response.status_code


def stored_ids(server: LiveServer) -> set[str]:
    conn = sqlite3.connect(server.db)
    ids = {row[0] for row in conn.execute("select uid from events")}
    conn.close()
    return ids


def test_sigkill_right_after_202_loses_nothing(live_server: LiveServer) -> None:
    site = make_site(live_server)
    assert send(live_server, site, "killed-0001") == 202
    live_server.kill()
    assert "killed-0001" in stored_ids(live_server)
    live_server.start()
    assert send(live_server, site, "killed-0001") == 202  # a retry of the same event is a duplicate
    assert stored_ids(live_server) == {"killed-0001"}


def load(
    server: LiveServer, site: dict, acknowledged: list[str], statuses: list[int]
) -> threading.Event:
    """Eight threads posting distinct events until told to stop or the server goes away."""
    stop = threading.Event()

    def worker(n: int) -> None:
        with httpx2.Client(timeout=5) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                event_id = f"load-{n:02d}-{i:05d}"
                try:
                    status = send(server, site, event_id, client)
                except httpx2.HTTPError:
                    return
                statuses.append(status)
                if status == 202:
                    acknowledged.append(event_id)

    for n in range(8):
        threading.Thread(target=worker, args=(n,), daemon=True).start()
    return stop


def wait_for(condition, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_sigkill_under_concurrent_load_keeps_every_acknowledged_event(
    live_server: LiveServer,
) -> None:
    site = make_site(live_server)
    acknowledged: list[str] = []
    stop = load(live_server, site, acknowledged, [])
    wait_for(lambda: len(acknowledged) >= 300)
    live_server.kill()
    stop.set()
    assert set(acknowledged) <= stored_ids(live_server)


def test_sigterm_finishes_in_flight_requests_and_commits_them(live_server: LiveServer) -> None:
    site = make_site(live_server)
    acknowledged: list[str] = []
    statuses: list[int] = []
    stop = load(live_server, site, acknowledged, statuses)
    wait_for(lambda: len(acknowledged) >= 100)
    live_server.stop()
    stop.set()
    assert set(acknowledged) <= stored_ids(live_server)
    assert set(statuses) <= {202, 429, 503}, set(statuses)
    assert "Traceback" not in live_server.stderr
