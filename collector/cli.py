"""The `smsretarget` command: serve, demo, migrate, site add, contacts import/export/erase.

Exit status: 0 success, 2 usage error (argparse), 1 any other failure with one line on stderr
that says what went wrong and how to fix it. No tracebacks for user mistakes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import logging
import secrets
import socket
import sqlite3
import sys
from collections.abc import Sequence

from collector.cli_contacts import add_commands as add_contacts_commands
from collector.db import Database, applied_migrations, migrate_file, migration_files
from collector.errors import AppError
from collector.settings import Settings, SettingsError
from collector.site_fields import is_alphanumeric_sender
from collector.sites import Site, create_site, get_site

DEMO_SITE_NAME = "Demo shop"


class CliError(Exception):
    """A failure the user can fix; printed as one line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(**({"db": args.db} if getattr(args, "db", None) else {}))
        args.handler(args, settings)
    except (CliError, SettingsError) as exc:
        print(f"smsretarget: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsretarget", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", metavar="PATH", help="SQLite database file (default: SMSR_DB)")
        return p

    serve = with_db(commands.add_parser("serve", help="migrate, then run the whole service"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=run_serve)

    demo = with_db(commands.add_parser("demo", help="run with a demo shop on built-in defaults"))
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(handler=run_demo)

    migrate = with_db(commands.add_parser("migrate", help="apply pending database migrations"))
    migrate.add_argument("--status", action="store_true", help="list migrations, change nothing")
    migrate.set_defaults(handler=run_migrate)

    site = commands.add_parser("site", help="manage sites").add_subparsers(
        dest="site_command", required=True, metavar="SUBCOMMAND"
    )
    site_add = with_db(site.add_parser("add", help="add a site and print its script tag"))
    site_add.add_argument("name")
    site_add.add_argument("--origin", action="append", required=True, metavar="URL")
    site_add.add_argument("--country", default="US", metavar="CC")
    site_add.set_defaults(handler=run_site_add)

    add_contacts_commands(commands, with_db)
    return parser


def open_database_file(path: str) -> None:
    """Create or migrate the file now, so a bad path fails with a message before serving."""
    try:
        migrate_file(path)
    except (sqlite3.Error, OSError) as exc:
        raise CliError(
            f"cannot open database {path!r} ({exc}); check that its directory exists and is "
            "writable, or pass --db PATH"
        ) from None


def bind_socket(host: str, port: int) -> socket.socket:
    if not 0 < port < 65536:
        raise CliError(f"--port {port} is not a TCP port (1-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except socket.gaierror as exc:
        raise CliError(f"--host {host!r} cannot be resolved ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is in use; stop the other server or pass --port N"
            ) from None
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, host: str, port: int, demo_site_key: str | None = None) -> None:
    import uvicorn  # imported here so that `migrate` and `site add` start fast

    from collector.app import create_app

    sock = bind_socket(host, port)
    print(
        f"smsretarget: serving on {settings.public_url} (database {settings.db})", file=sys.stderr
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    if is_alphanumeric_sender(settings.vonage_from):
        print(
            f"smsretarget: warning: VONAGE_FROM={settings.vonage_from!r} is alphanumeric: "
            "recipients cannot reply, so STOP and YES by text will not reach you",
            file=sys.stderr,
        )
    config = uvicorn.Config(
        create_app(settings, demo_site_key=demo_site_key),
        log_level=settings.log_level.lower(),
        proxy_headers=settings.trust_proxy,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=[sock])


def public(settings: Settings, host: str, port: int) -> Settings:
    if settings.public_url:
        return dataclasses.replace(settings, public_url=settings.public_url.rstrip("/"))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return dataclasses.replace(settings, public_url=f"http://{shown}:{port}")


def run_serve(args: argparse.Namespace, settings: Settings) -> None:
    open_database_file(settings.db)
    serve(public(settings, args.host, args.port), args.host, args.port)


def run_demo(args: argparse.Namespace, settings: Settings) -> None:
    open_database_file(settings.db)
    settings = public(settings, args.host, args.port)
    if not settings.admin_token:
        from collector.settings import Secret

        settings = dataclasses.replace(settings, admin_token=Secret(secrets.token_urlsafe(18)))
    site = asyncio.run(ensure_demo_site(settings))
    url = settings.public_url
    print(
        f"\n  Demo shop:   {url}/demo/\n"
        f"  Events API:  curl -H 'Authorization: Bearer {settings.admin_token}' "
        f"{url}/api/v1/events\n"
        f"  Texts are printed here by the console sender.\n",
        file=sys.stderr,
    )
    serve(settings, args.host, args.port, demo_site_key=site.key)


DEMO_AUTOMATIONS = (
    # (name, trigger, delay in seconds, template): short delays, so a newcomer sees a text soon.
    (
        "Cart reminder",
        "cart_abandoned",
        30,
        "Hi {{ contact.first_name | default('there') }}, your {{ cart.count }} item(s) "
        "({{ cart.value | money(cart.currency) }}) are still in your cart: {{ link }}",
    ),
    (
        "Pricing follow-up",
        "pricing_viewed",
        60,
        "Hi {{ contact.first_name | default('there') }}, questions about our plans? "
        "Reply to this text or pick up where you left: {{ link }}",
    ),
)


async def ensure_demo_site(settings: Settings) -> Site:
    """The demo site for this URL, created on first run with a pricing path and automations."""
    # Imported here: Jinja2 and the automation code are not needed by the other commands.
    from collector.automations import create_automation
    from collector.message_templates import create_template

    db = await Database.open(settings.db)
    try:
        row = await db.fetchone(
            "select id from sites where name = ? and origins = json_array(?)",
            (DEMO_SITE_NAME, settings.public_url),
        )
        if row is not None:
            return await get_site(db, row["id"])
        site = await create_site(
            db,
            {
                "name": DEMO_SITE_NAME,
                "origins": [settings.public_url],
                "pricing_paths": ["/demo/pricing*"],
                "double_opt_in": False,
                "send_window": {"start": "00:00", "end": "24:00"},
            },
            settings.vonage_from,
        )
        for name, trigger, delay, body in DEMO_AUTOMATIONS:
            template = await create_template(db, {"site_id": site.id, "name": name, "body": body})
            await create_automation(
                db,
                {
                    "site_id": site.id,
                    "name": name,
                    "trigger": trigger,
                    "delay_seconds": delay,
                    "template_id": template.id,
                },
            )
        return site
    finally:
        await db.close()


def run_migrate(args: argparse.Namespace, settings: Settings) -> None:
    if not args.status:
        open_database_file(settings.db)
        print(f"database {settings.db} is up to date")
        return
    try:
        conn = sqlite3.connect(f"file:{settings.db}?mode=ro", uri=True, isolation_level=None)
        done = applied_migrations_readonly(conn)
    except sqlite3.Error as exc:
        raise CliError(f"cannot read database {settings.db!r} ({exc}); pass --db PATH") from None
    for path in migration_files():
        state = f"applied {done[path.stem]}" if path.stem in done else "pending"
        print(f"{path.stem}  {state}")


def applied_migrations_readonly(conn: sqlite3.Connection) -> dict[str, str]:
    exists = conn.execute(
        "select 1 from sqlite_master where type = 'table' and name = 'schema_migrations'"
    ).fetchone()
    return applied_migrations(conn) if exists else {}


def run_site_add(args: argparse.Namespace, settings: Settings) -> None:
    open_database_file(settings.db)

    async def add() -> Site:
        db = await Database.open(settings.db)
        try:
            return await create_site(
                db,
                {"name": args.name, "origins": args.origin, "country": args.country},
                settings.vonage_from,
            )
        finally:
            await db.close()

    try:
        site = asyncio.run(add())
    except AppError as exc:
        flag = {"origins": "--origin", "country": "--country"}.get(exc.field or "", "")
        raise CliError(f"{flag + ': ' if flag else ''}{exc.message}") from None
    base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    print(f'Site "{site.name}" added.')
    print(f"key: {site.key}")
    print(f"secret: {site.secret}")
    print("Paste this into every page, before </head>:")
    print(
        "<script>window.smsr=window.smsr||function(){(smsr.q=smsr.q||[]).push(arguments)}</script>"
    )
    print(f'<script async src="{base}/s.js" data-site="{site.key}"></script>')
