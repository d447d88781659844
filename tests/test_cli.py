"""The `smsretarget` command as a user runs it: exit codes and one-line messages."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from support import free_port


def run(
    *args: str, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        input=stdin,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smsretarget: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_site_add_prints_key_and_script_tag(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = run(
        "site",
        "add",
        "My shop",
        "--origin",
        "https://shop.example.com",
        "--country",
        "GB",
        "--db",
        str(db),
    )
    assert result.returncode == 0, result.stderr
    key = next(
        line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("key: ")
    )
    assert (
        f'<script async src="http://127.0.0.1:8000/s.js" data-site="{key}"></script>'
        in result.stdout
    )
    assert "smsr.q=smsr.q||[]" in result.stdout
    conn = sqlite3.connect(db)
    assert conn.execute("select name, country, origins from sites").fetchone() == (
        "My shop",
        "GB",
        '["https://shop.example.com"]',
    )


def test_site_add_uses_the_public_url_in_the_tag(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SMSR_PUBLIC_URL=https://sms.example.com/\n")
    result = run(
        "site", "add", "S", "--origin", "https://a.example.com", "--db", "s.db", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert 'src="https://sms.example.com/s.js"' in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("site", "add", "S", "--origin", "shop.example.com"), ("--origin", "https://")),
        (("site", "add", "S", "--origin", "https://a.com/path"), ("--origin",)),
        (("site", "add", "S", "--origin", "https://a.com", "--country", "XX"), ("--country",)),
    ],
)
def test_bad_site_options_exit_1(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    result = run(*args, "--db", str(tmp_path / "s.db"))
    assert_one_line_error(result, *words)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("launch",),
        ("site",),
        ("site", "add"),
        ("site", "add", "S"),
        ("serve", "--port", "eighty"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage: smsretarget" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_database_path(tmp_path: Path) -> None:
    result = run("migrate", "--db", str(tmp_path / "missing-dir" / "x.db"))
    assert_one_line_error(result, "cannot open database", "--db")
    result = run(
        "serve", "--db", str(tmp_path / "missing-dir" / "x.db"), "--port", str(free_port())
    )
    assert_one_line_error(result, "cannot open database")


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SMSR_EVENT_RETENTION_DAYS=forever\n")
    result = run("migrate", "--db", "x.db", cwd=tmp_path)
    assert_one_line_error(result, "SMSR_EVENT_RETENTION_DAYS")


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port), "--db", str(tmp_path / "x.db"))
    assert_one_line_error(result, f"port {port}", "--port")


def test_migrate_and_status(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    before = run("migrate", "--status", "--db", db)
    assert before.returncode == 1  # no database yet: nothing to read
    assert run("migrate", "--db", db).returncode == 0
    status = run("migrate", "--status", "--db", db)
    assert status.returncode == 0
    assert status.stdout.splitlines()[0].startswith("0001_initial  applied ")
    assert "pending" not in status.stdout


def test_serve_stops_cleanly_on_sigterm(live_server) -> None:
    live_server.stop()
    assert live_server.process is not None
    # uvicorn re-raises the signal it caught once shutdown is complete.
    assert live_server.process.returncode in (0, -15)
    assert "Application shutdown complete" in live_server.stderr
    assert "Traceback" not in live_server.stderr


def test_demo_runs_the_shop_on_built_in_defaults(tmp_path: Path) -> None:
    import re
    import time

    import httpx2

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "collector", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                page = httpx2.get(f"{base}/demo/", timeout=0.5)
                break
            except httpx2.HTTPError:
                time.sleep(0.1)
        assert page.status_code == 200
        assert f'src="{base}/s.js"' in page.text
        assert (
            tmp_path / "smsretarget.db"
        ).is_file()  # the default database, in the working directory
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    token = re.search(r"Authorization: Bearer (\S+)'", stderr)
    assert token, stderr
    assert f"{base}/demo/" in stderr
    conn = sqlite3.connect(tmp_path / "smsretarget.db")
    assert conn.execute("select name, origins from sites").fetchall() == [
        ("Demo shop", f'["{base}"]')
    ]
    automations = conn.execute("select trigger, delay_seconds, active from automations").fetchall()
    assert sorted(automations) == [("cart_abandoned", 30, 1), ("pricing_viewed", 60, 1)]
