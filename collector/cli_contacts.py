"""`smsretarget contacts import | export | erase`: contacts in bulk, and a person's data on request.

Import reads a CSV with a header row (docs/contacts.md): `phone`, `consent_text` and
`consented_at` are required, `first_name`, `source` and `ip` optional. Each good row becomes an
active contact with a `csv_import` ledger record; a bad row is reported with its line number and
skipped; a contact that is already active is left unchanged, so importing a file twice changes
nothing; a number that opted out or was erased is never brought back.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from collector import consent
from collector.contacts import erase_phone, export_phone
from collector.db import Database
from collector.errors import AppError, BadRequest
from collector.instance import instance_key
from collector.optins import ImportRow, check_ip, check_text, import_optin, parse_time
from collector.phones import lookup_form, parse_phone
from collector.settings import Settings
from collector.sites import Site

REQUIRED = ("phone", "consent_text", "consented_at")
OPTIONAL = ("first_name", "source", "ip")
BATCH = 500
BAR_WIDTH = 30
SKIPPED = {"opted_out": "opted out (STOP)", "suppressed": "on the suppression list"}


def add_commands(
    commands: Any, with_db: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    """Register `contacts import/export/erase` on the main parser's subcommands."""
    contacts = commands.add_parser("contacts", help="import, export and erase contacts")
    sub = contacts.add_subparsers(dest="contacts_command", required=True, metavar="SUBCOMMAND")
    importing = with_db(sub.add_parser("import", help="import opted-in contacts from a CSV file"))
    importing.add_argument("file", metavar="FILE.csv")
    importing.add_argument("--site", required=True, metavar="KEY", help="the site's key")
    importing.set_defaults(handler=run_import)
    export = with_db(sub.add_parser("export", help="print all we hold about a number, as JSON"))
    export.add_argument("phone", metavar="PHONE")
    export.add_argument("--site", metavar="KEY", help="only this site (default: every site)")
    export.set_defaults(handler=run_export)
    erase = with_db(sub.add_parser("erase", help="erase a number, keeping only a keyed hash"))
    erase.add_argument("phone", metavar="PHONE")
    erase.add_argument("--site", metavar="KEY", help="only this site (default: every site)")
    erase.set_defaults(handler=run_erase)


def _cli_error(message: str) -> Exception:
    from collector.cli import CliError  # cli imports this module

    return CliError(message)


def _open(settings: Settings) -> None:
    from collector.cli import open_database_file

    open_database_file(settings.db)


async def _site(db: Database, key: str | None) -> Site | None:
    if key is None:
        return None
    row = await db.fetchone("select * from sites where key = ?", (key,))
    if row is None:
        raise _cli_error(f"--site {key!r}: no site has this key; `smsretarget site add` prints it")
    return Site.from_row(row)


def _phone(raw: str, site: Site | None) -> str:
    phone = lookup_form(raw, site.country if site else None)
    if phone is None:
        raise _cli_error(f"PHONE {raw!r} is not a phone number; give it like +14155552671")
    return phone


# -- import -----------------------------------------------------------------------------------


def run_import(args: argparse.Namespace, settings: Settings) -> None:
    _open(settings)
    path = Path(args.file)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(_records(handle))
    except OSError as exc:
        raise _cli_error(f"cannot read {args.file!r} ({exc.strerror}); check the path") from None
    except UnicodeDecodeError:
        raise _cli_error(f"{args.file!r} is not UTF-8 text; save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise _cli_error(f"{args.file!r} is not a readable CSV file ({exc})") from None
    counts = asyncio.run(_import(settings, args.site, lines, sys.stderr))
    bad = counts["bad"]
    kept_out = counts["opted_out"] + counts["suppressed"]
    print(
        f"imported {counts['imported']}, unchanged {counts['unchanged']} (already active), "
        f"skipped {bad + kept_out} ({bad} bad, {kept_out} opted out or erased) "
        f"from {args.file} into site {args.site}"
    )


def _records(handle: TextIO) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(handle)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise _cli_error(
            f"the CSV header lacks {', '.join(missing)}; columns are {', '.join(REQUIRED)} "
            f"(required) and {', '.join(OPTIONAL)} (optional)"
        )
    reader.fieldnames = header
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if unknown:
        print(f"smsretarget: ignoring column(s) {', '.join(unknown)}", file=sys.stderr)
    return [(reader.line_num, row) for row in reader]


async def _import(
    settings: Settings, site_key: str, lines: list[tuple[int, dict[str, str]]], err: TextIO
) -> Counter[str]:
    db = await Database.open(settings.db)
    try:
        site = await _site(db, site_key)
        assert site is not None
        key = await instance_key(db, "suppression_key")
        counts: Counter[str] = Counter()
        bar = Progress(len(lines), err)
        for start in range(0, len(lines), BATCH):
            now = consent.now_ms()
            async with db.transaction() as conn:
                for line, record in lines[start : start + BATCH]:
                    try:
                        row = import_row(record, site, now)
                    except AppError as exc:
                        counts["bad"] += 1
                        bar.note(f"line {line}: {exc.message}; skipped")
                        continue
                    outcome = await import_optin(conn, site, key, row, now)
                    counts[outcome] += 1
                    if outcome in SKIPPED:
                        bar.note(f"line {line}: {row.phone} is {SKIPPED[outcome]}; skipped")
            bar.update(min(start + BATCH, len(lines)))
        bar.done()
        return counts
    finally:
        await db.close()


def import_row(record: dict[str, Any], site: Site, now: int) -> ImportRow:
    """One CSV record checked; `BadRequest` names the column and the problem."""

    def cell(name: str) -> str | None:
        value = record.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    consented_at = parse_time(cell("consented_at"), "consented_at", now)
    if consented_at is None:
        raise BadRequest(
            "consented_at is required (RFC 3339, e.g. 2024-05-01T12:00:00Z)", field="consented_at"
        )
    consent_text = check_text(cell("consent_text"), "consent_text", 1000, required=True)
    assert consent_text is not None
    return ImportRow(
        phone=parse_phone(cell("phone"), site.country, site.allowed_countries),
        first_name=check_text(cell("first_name"), "first_name", 100),
        consent_text=consent_text,
        consented_at=consented_at,
        source=check_text(cell("source"), "source", 100),
        ip=check_ip(cell("ip"), "ip"),
    )


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = -1

    def render(self, done: int) -> str:
        share = done / self.total if self.total else 1.0
        filled = int(share * BAR_WIDTH)
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self.total} rows"

    def update(self, done: int) -> None:
        tenth = int(10 * done / self.total) if self.total else 10
        if self.tty:
            print("\r" + self.render(done), end="", file=self.stream, flush=True)
        elif tenth != self.shown:
            self.shown = tenth
            print(self.render(done), file=self.stream, flush=True)

    def note(self, message: str) -> None:
        print(("\r\033[K" if self.tty else "") + message, file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)
        elif self.shown < 10:
            self.update(self.total)


# -- export and erase -------------------------------------------------------------------------


def run_export(args: argparse.Namespace, settings: Settings) -> None:
    _open(settings)

    async def export() -> dict[str, Any]:
        db = await Database.open(settings.db)
        try:
            site = await _site(db, args.site)
            phone = _phone(args.phone, site)
            key = await instance_key(db, "suppression_key")
            return await export_phone(db, key, phone, site.id if site else None)
        finally:
            await db.close()

    data = asyncio.run(export())
    print(json.dumps(data, indent=2, ensure_ascii=False))
    if not any(data[k] for k in data if k != "phone"):
        print(f"smsretarget: nothing is held about {data['phone']}", file=sys.stderr)


def run_erase(args: argparse.Namespace, settings: Settings) -> None:
    _open(settings)

    async def erase() -> tuple[str, int]:
        db = await Database.open(settings.db)
        try:
            site = await _site(db, args.site)
            phone = _phone(args.phone, site)
            key = await instance_key(db, "suppression_key")
            scope = [site.id] if site else None
            return phone, await erase_phone(db, key, phone, scope, consent.now_ms())
        finally:
            await db.close()

    phone, removed = asyncio.run(erase())
    where = f"site {args.site}" if args.site else "every site"
    print(
        f"erased {phone} on {where}: {removed} contact(s) removed with their consent records, "
        "events and messages; the number is kept only as a keyed hash on the suppression list"
    )
