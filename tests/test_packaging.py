"""`pip install .` (not only editable) works from any directory: the wheel carries everything."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    [built] = out.glob("sms_retarget-*.whl")
    return built


def test_wheel_ships_migrations_snippet_and_both_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for migration in (ROOT / "migrations").glob("*.sql"):
        assert f"collector/migrations/{migration.name}" in names
    assert "collector/static/s.js" in names
    assert "dashboard/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "smsretarget = collector.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_migrates_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import collector.db as d, collector.snippet as s;"
        "print(d.migrations_dir()); print(s.SNIPPET_PATH.is_file())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    migrations, snippet_found = result.stdout.split()
    assert Path(migrations) == site / "collector" / "migrations"
    assert snippet_found == "True"
    migrate = subprocess.run(
        [sys.executable, "-m", "collector", "migrate", "--db", "x.db"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (elsewhere / "x.db").is_file()
