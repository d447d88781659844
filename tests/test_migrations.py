"""The migration runner: forward-only files, each applied with its record in one transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collector.db import (
    applied_migrations,
    apply_migrations,
    configure,
    migration_files,
    migrations_dir,
)


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    return conn


def test_real_migrations_apply_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a.db")
    names = [p.stem for p in migration_files()]
    assert names and names[0] == "0001_initial"
    assert apply_migrations(conn) == names
    assert apply_migrations(conn) == []
    assert list(applied_migrations(conn)) == names
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_every_migration_says_why(tmp_path: Path) -> None:
    for path in migration_files():
        assert path.read_text().lstrip().startswith("--"), path.name
        assert path.name[:4].isdigit() and path.name[4] == "_"


def test_failed_migration_stays_pending_and_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_first.sql").write_text("-- ok\ncreate table a (x integer);\n")
    (folder / "0002_broken.sql").write_text(
        "-- half good\ncreate table b (x integer);\ninsert into nowhere values (1);\n"
    )
    conn = connect(tmp_path / "b.db")
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, folder)
    assert list(applied_migrations(conn)) == ["0001_first"]
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    assert "a" in tables and "b" not in tables
    (folder / "0002_broken.sql").write_text("-- fixed\ncreate table b (x integer);\n")
    assert apply_migrations(conn, folder) == ["0002_broken"]


def test_migrations_dir_is_the_repo_folder_in_a_checkout() -> None:
    assert (migrations_dir() / "0001_initial.sql").is_file()
