"""Message templates of a site: validation, storage, and the sample rendering the editor shows.

The body is checked with `templating.check` on every save (syntax with its line, variable names,
a render against sample data). What the API reports beside it (`encoding`, `characters`,
`segments`, `warnings`) is the sample as a *first* text would go out: with the site's name, a
tracked link as long as the real ones, and the opt-out wording appended when the body lacks it
(issue 4: it is added to a contact's first text in 30 days), because that is the longest text the
template produces and the one that decides what a marketer pays.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiosqlite

from collector import site_fields as f
from collector.db import Database, ms_to_iso
from collector.errors import BadRequest, Conflict, NotFound
from collector.sms_encoding import analyze
from collector.templating import SAMPLE, WARN_SEGMENTS, TemplateProblem, check
from collector.templating import render as render_template

EDITABLE = ("site_id", "name", "body")
READ_ONLY = ("id", "created_at", "updated_at", "sample", "encoding", "characters", "segments")
SAMPLE_SITE_NAME = "Demo shop"
SAMPLE_CODE = "Ab3dE9xQk2Z"  # as long as a real code (links.CODE_BYTES)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Preview:
    text: str
    encoding: str
    characters: int
    segments: int
    warnings: tuple[str, ...]
    opt_out_added: bool

    def to_api(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "encoding": self.encoding,
            "characters": self.characters,
            "segments": self.segments,
            "warnings": list(self.warnings),
            "opt_out_added": self.opt_out_added,
        }


def preview(body: Any, site_name: str | None = None, public_url: str | None = None) -> Preview:
    """Check `body` and render it as a first text from `site_name`; raises BadRequest on `body`."""
    if not isinstance(body, str):
        raise BadRequest("body must be a string (the template text)", field="body")
    try:
        check(body)
        link = f"{(public_url or 'https://sms.example.com').rstrip('/')}/r/{SAMPLE_CODE}"
        variables = {
            **SAMPLE,
            "site": SimpleNamespace(name=site_name or SAMPLE_SITE_NAME),
            "link": link,
        }
        plain = render_template(body, variables)
        text = render_template(body, variables, add_opt_out=True)
    except TemplateProblem as exc:
        raise BadRequest(f"body: {exc}", code="template_error", field="body") from None
    added = text != plain
    encoding = analyze(text)
    warnings = []
    if encoding.segments > WARN_SEGMENTS:
        warnings.append(
            f"{encoding.segments} segments ({encoding.characters} characters, {encoding.name}): "
            "each segment is billed; keep it to two"
        )
    if encoding.name == "UCS-2":
        warnings.append("characters outside GSM-7 make the whole text UCS-2 (70 per segment)")
    if added:
        warnings.append(
            "a contact's first text in 30 days gets 'Reply STOP to opt out' appended; "
            "write STOP wording into the template to choose it yourself"
        )
    return Preview(
        text, encoding.name, encoding.characters, encoding.segments, tuple(warnings), added
    )


@dataclass(frozen=True)
class Template:
    id: int
    site_id: int
    name: str
    body: str
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Template:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def to_api(self, site_name: str | None, public_url: str | None) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": self.id,
            "site_id": self.site_id,
            "name": self.name,
            "body": self.body,
            "created_at": ms_to_iso(self.created_at),
            "updated_at": ms_to_iso(self.updated_at),
        }
        try:
            sample = preview(self.body, site_name, public_url)
        except BadRequest as exc:  # saved under older rules; say so instead of failing the read
            answer.update(sample=None, encoding=None, characters=None, segments=None)
            answer["warnings"] = [exc.message]
            return answer
        answer.update(
            sample=sample.text,
            encoding=sample.encoding,
            characters=sample.characters,
            segments=sample.segments,
            warnings=list(sample.warnings),
        )
        return answer


def validate(data: dict[str, Any], current: Template | None) -> dict[str, Any]:
    """Column values for a create (`current` None) or a partial update."""
    f.check_field_names(
        data,
        editable=EDITABLE,
        read_only=(*READ_ONLY, "warnings"),
        required=EDITABLE,
        creating=current is None,
        what="templates",
    )
    cols: dict[str, Any] = {}
    if "site_id" in data:
        site_id = f.check_int(data["site_id"], "site_id", minimum=1, maximum=2**62)
        if current is not None and site_id != current.site_id:
            raise BadRequest(
                "site_id cannot change; create the template on the other site", field="site_id"
            )
        cols["site_id"] = site_id
    if "name" in data:
        cols["name"] = f.check_string(data["name"], "name", max_len=200)
    if "body" in data:
        preview(data["body"])
        cols["body"] = data["body"]
    return cols


async def site_exists(conn: aiosqlite.Connection, site_id: int) -> bool:
    cursor = await conn.execute("select 1 from sites where id = ?", (site_id,))
    return await cursor.fetchone() is not None


async def site_name(db: Database, site_id: int) -> str | None:
    row = await db.fetchone("select name from sites where id = ?", (site_id,))
    return str(row["name"]) if row else None


async def create_template(db: Database, data: dict[str, Any]) -> Template:
    cols = validate(data, None)
    now = now_ms()
    async with db.transaction() as conn:
        if not await site_exists(conn, cols["site_id"]):
            raise BadRequest(f"no site with id {cols['site_id']}", field="site_id")
        cursor = await conn.execute(
            "insert into templates (site_id, name, body, created_at, updated_at) "
            "values (?, ?, ?, ?, ?)",
            (cols["site_id"], cols["name"], cols["body"], now, now),
        )
        template_id = cursor.lastrowid
    assert template_id is not None
    return await get_template(db, template_id)


async def update_template(db: Database, template_id: int, data: dict[str, Any]) -> Template:
    cols = validate(data, await get_template(db, template_id))
    cols.pop("site_id", None)
    if cols:
        # names come from EDITABLE, never from input
        assignments = ", ".join(f"{name} = :{name}" for name in cols)
        await db.execute(
            f"update templates set {assignments}, updated_at = :now where id = :id",
            {**cols, "now": now_ms(), "id": template_id},
        )
    return await get_template(db, template_id)


async def delete_template(db: Database, template_id: int) -> None:
    """Delete a template no automation uses; 409 names the automations that do."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "select id from automations where template_id = ? order by id", (template_id,)
        )
        users = [row["id"] for row in await cursor.fetchall()]
        if users:
            raise Conflict(
                f"template {template_id} is used by automation(s) "
                f"{', '.join(map(str, users))}; give them another template or delete them first",
                code="template_in_use",
            )
        cursor = await conn.execute("delete from templates where id = ?", (template_id,))
        if not cursor.rowcount:
            raise NotFound(f"no template with id {template_id}")


async def get_template(db: Database, template_id: int) -> Template:
    row = await db.fetchone("select * from templates where id = ?", (template_id,))
    if row is None:
        raise NotFound(f"no template with id {template_id}")
    return Template.from_row(row)


async def list_templates(
    db: Database, site_id: int | None, limit: int, offset: int
) -> tuple[list[Template], int]:
    rows, total = await db.page("templates", {"site_id": site_id}, "id", limit, offset)
    return [Template.from_row(r) for r in rows], total
