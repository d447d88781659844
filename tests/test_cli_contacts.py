"""`smsretarget contacts import | export | erase`, run as a user runs them, on real database files."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.consent import HASHED_FIELDS
from collector.settings import Settings

from optin_support import PHONE, send_optin, settled, text_in

HEADER = "phone,first_name,consent_text,consented_at,source,ip\n"
GOOD = (
    "+14155552671,Ada,I agree to texts,2025-05-01T12:00:00Z,checkout,198.51.100.7\n"
    '(415) 555-2672,Bob,"Yes, text me",2025-05-02,store,\n'
)
BAD = (
    "12,Bad,I agree,2025-05-02,,\n"
    "+14155552673,,,2025-05-02,,\n"
    "+14155552674,Cy,I agree,tomorrow,,\n"
    "+14155552675,Di,I agree,2025-05-02,,999.1.1.1\n"
    "+14155552676,Ed,I agree,,,\n"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("smsretarget: error: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in line, line


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def site_key(db: Path) -> str:
    result = run("site", "add", "Shop", "--origin", "https://shop.example.com", "--db", str(db))
    assert result.returncode == 0, result.stderr
    return next(
        line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("key: ")
    )


def table(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_import_keeps_good_rows_reports_bad_ones_by_line_and_shows_progress(
    tmp_path: Path, db: Path, site_key: str
) -> None:
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(HEADER + GOOD + BAD + "+1 415 555 2671,Ada,Again,2025-06-01,,\n")
    result = run("contacts", "import", str(csv_file), f"--site={site_key}", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported 2, unchanged 1 (already active), skipped 5 (5 bad")
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == ["line 4", "line 5", "line 6", "line 7", "line 8"]
    assert "phone '12' is not a valid number" in errors[0]
    assert "consent_text is required" in errors[1]
    assert "consented_at 'tomorrow' is not an RFC 3339 time" in errors[2]
    assert "ip '999.1.1.1' is not an IP address" in errors[3]
    assert "consented_at is required" in errors[4]
    assert "[##############################] 8/8 rows" in result.stderr
    assert table(db, "select phone, first_name, status from contacts order by phone") == [
        ("+14155552671", "Ada", "active"),
        ("+14155552672", "Bob", "active"),
    ]
    records = table(
        db, "select source, source_detail, consent_text, ip, at from consents order by id"
    )
    assert records[0] == (
        "csv_import",
        "checkout",
        "I agree to texts",
        "198.51.100.7",
        1746100800000,
    )
    assert records[1][2] == "Yes, text me"


def test_importing_the_same_file_twice_changes_nothing(
    tmp_path: Path, db: Path, site_key: str
) -> None:
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(HEADER + GOOD)
    assert (
        run("contacts", "import", str(csv_file), f"--site={site_key}", "--db", str(db)).returncode
        == 0
    )
    before = table(db, "select * from consents"), table(db, "select * from contacts")
    again = run("contacts", "import", str(csv_file), f"--site={site_key}", "--db", str(db))
    assert again.returncode == 0 and again.stdout.startswith("imported 0, unchanged 2")
    assert (table(db, "select * from consents"), table(db, "select * from contacts")) == before


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("name,phone\nAda,+14155552671\n", ["header lacks consent_text, consented_at"]),
        (b"\xff\xfe\x00bad", ["not UTF-8"]),
    ],
)
def test_unusable_files_are_one_line_errors(
    tmp_path: Path, db: Path, site_key: str, content: str | bytes, words: list[str]
) -> None:
    csv_file = tmp_path / "contacts.csv"
    if isinstance(content, bytes):
        csv_file.write_bytes(content)
    else:
        csv_file.write_text(content)
    one_line_error(
        run("contacts", "import", str(csv_file), f"--site={site_key}", "--db", str(db)), *words
    )


def test_a_site_key_starting_with_a_dash(tmp_path: Path, db: Path, site_key: str) -> None:
    """Keys are random URL-safe text and may begin with "-": `--site=KEY` always works."""
    with sqlite3.connect(db) as conn:
        conn.execute("update sites set key = '-dash-key'")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(HEADER + GOOD)
    result = run("contacts", "import", str(csv_file), "--site=-dash-key", "--db", str(db))
    assert result.returncode == 0, result.stderr


def test_usage_and_lookup_errors(tmp_path: Path, db: Path, site_key: str) -> None:
    one_line_error(
        run(
            "contacts", "import", str(tmp_path / "none.csv"), f"--site={site_key}", "--db", str(db)
        ),
        "cannot read",
    )
    (tmp_path / "ok.csv").write_text(HEADER)
    one_line_error(
        run("contacts", "import", str(tmp_path / "ok.csv"), "--site", "nope", "--db", str(db)),
        "--site 'nope'",
    )
    one_line_error(run("contacts", "export", "call me", "--db", str(db)), "not a phone number")
    one_line_error(
        run("contacts", "erase", PHONE, "--site", "nope", "--db", str(db)), "no site has this key"
    )
    assert run("contacts", "import", "--db", str(db)).returncode == 2
    assert run("contacts").returncode == 2


def recompute(record: dict) -> str:
    """The documented algorithm (docs/contacts.md), written out independently of the code."""
    payload = {name: record[name] for name in HASHED_FIELDS}
    for name in ("at", "recorded_at"):
        moment = datetime.fromisoformat(record[name].replace("Z", "+00:00"))
        payload[name] = round(moment.timestamp() * 1000)
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_export_holds_everything_with_a_verifiable_chain(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    send_optin(client, site)
    text_in(client, "yes")
    text_in(client, "Is it in blue?")
    settled(client, admin)
    result = run("contacts", "export", "+1 (415) 555-2671", "--db", settings.db)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["phone"] == PHONE and data["suppressions"] == []
    [contact] = data["contacts"]
    assert contact["status"] == "active"
    assert [r["kind"] for r in contact["consents"]] == ["opt_in", "confirmation"]
    assert contact["consent_chain"]["valid"] is True
    previous = ""
    for record in contact["consents"]:
        assert record["prev_hash"] == previous
        assert recompute(record) == record["hash"]
        previous = record["hash"]
    assert {e["name"] for e in contact["events"]} == {"optin"}
    assert [m["kind"] for m in contact["messages"]] == ["confirmation"]
    assert {i["body"] for i in contact["inbound"]} == {"yes", "Is it in blue?"}
    scoped = run("contacts", "export", PHONE, f"--site={site['key']}", "--db", settings.db)
    assert json.loads(scoped.stdout)["contacts"][0]["id"] == contact["id"]
    nobody = run("contacts", "export", "+14155550123", "--db", settings.db)
    assert nobody.returncode == 0 and json.loads(nobody.stdout)["contacts"] == []
    assert "nothing is held" in nobody.stderr


def test_a_number_that_said_stop_and_was_erased_is_not_brought_back_by_an_import(
    client: TestClient, admin: dict, site: dict, settings: Settings, tmp_path: Path
) -> None:
    client.patch(f"/api/v1/sites/{site['id']}", json={"double_opt_in": False}, headers=admin)
    send_optin(client, site)
    text_in(client, "STOP")
    settled(client, admin)
    erased = run("contacts", "erase", "14155552671", "--db", settings.db)
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.startswith("erased +14155552671 on every site: 1 contact(s) removed")
    db = Path(settings.db)
    for name in ("contacts", "consents", "events", "messages", "inbound_messages"):
        assert table(db, f"select count(*) from {name}") == [(0,)], name
    assert table(db, "select reason from suppressions") == [("erased",)]
    csv_file = tmp_path / "old-list.csv"
    csv_file.write_text(HEADER + GOOD)
    result = run("contacts", "import", str(csv_file), f"--site={site['key']}", "--db", settings.db)
    assert result.returncode == 0
    assert result.stdout.startswith("imported 1, unchanged 0 (already active), skipped 1")
    assert "line 2: +14155552671 is on the suppression list; skipped" in result.stderr
    assert table(db, "select phone from contacts") == [("+14155552672",)]


def test_an_opted_out_contact_is_not_reactivated_by_an_import(
    client: TestClient, admin: dict, site: dict, settings: Settings, tmp_path: Path
) -> None:
    client.patch(f"/api/v1/sites/{site['id']}", json={"double_opt_in": False}, headers=admin)
    send_optin(client, site)
    text_in(client, "Cancel")
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(HEADER + GOOD)
    result = run("contacts", "import", str(csv_file), f"--site={site['key']}", "--db", settings.db)
    assert "line 2: +14155552671 is opted out (STOP); skipped" in result.stderr
    assert table(Path(settings.db), "select status from contacts where phone = '+14155552671'") == [
        ("opted_out",)
    ]


def test_erase_on_one_site_leaves_the_others(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    other = client.post(
        "/api/v1/sites",
        json={"name": "Other", "origins": ["https://other.example.com"]},
        headers=admin,
    ).json()
    for each in (site, other):
        body = {"site_id": each["id"], "phone": PHONE, "consent_text": "Signed at the till"}
        assert client.post("/api/v1/contacts", json=body, headers=admin).status_code == 201
    result = run("contacts", "erase", PHONE, f"--site={other['key']}", "--db", settings.db)
    assert result.returncode == 0, result.stderr
    assert table(Path(settings.db), "select site_id from contacts") == [(site["id"],)]
