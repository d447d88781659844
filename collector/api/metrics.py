"""`GET /api/v1/metrics`: how automated texts did, as one funnel.

Every figure is about one set of messages: the automated ones (`kind = 'automation'`) of the
site and automation asked for, created at or after `since`. So `triggered` ≥ `sent` ≥
`delivered`, and a click, reply or purchase counts for the text it followed.
- `sent`: handed to the provider (`sent_at` set), whatever its receipt said later.
- `clicked`: texts with at least one counted click on their link (bots are never counted).
- `replied`: texts that got an answer which is not a keyword (STOP, HELP, ...): an inbound text of
  the contact after this text and before the contact's next automated text.
- `converted` and `revenue`: purchases credited to the texts (collector/attribution.py), and
  their value by currency (`XXX`, ISO 4217's "no currency", when the purchase named none).
- `skipped` and `cancelled`: counts by reason.

A deleted automation's texts keep their `automation_id`, so its figures stay readable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.http import int_param, require_admin
from collector.db import Database
from collector.errors import BadRequest, NotFound

NO_CURRENCY = "XXX"

# The messages counted: `:name is null or ...` keeps each filter optional without building SQL.
SELECTED = """
select id, contact_id, status, reason, sent_at from messages
where kind = 'automation'
  and (:site_id is null or site_id = :site_id)
  and (:automation_id is null or automation_id = :automation_id)
  and created_at >= :since
"""

FUNNEL = f"""
with selected as ({SELECTED})
select
    count(*) as triggered,
    count(sent_at) as sent,
    ifnull(sum(status = 'delivered'), 0) as delivered,
    (select count(*) from selected s
     where exists (select 1 from links l join link_clicks c on c.code = l.code
                   where l.message_id = s.id)) as clicked,
    (select count(*) from selected s
     where s.sent_at is not null and exists (
        select 1 from inbound_messages i
        where i.contact_id = s.contact_id and i.keyword is null and i.received_at >= s.sent_at
          and not exists (
            select 1 from messages n
            where n.contact_id = s.contact_id and n.kind = 'automation' and n.id != s.id
              and (n.sent_at > s.sent_at or (n.sent_at = s.sent_at and n.id > s.id))
              and n.sent_at <= i.received_at))) as replied,
    (select count(*) from attributions a join selected s on s.id = a.message_id) as converted
from selected
"""

REVENUE = f"""
with selected as ({SELECTED})
select ifnull(a.currency, '{NO_CURRENCY}') as currency, sum(a.value) as amount
from attributions a join selected s on s.id = a.message_id
group by 1 order by 1
"""

BY_REASON = f"""
with selected as ({SELECTED})
select status, ifnull(reason, 'none') as reason, count(*) as n
from selected where status in ('skipped', 'cancelled')
group by 1, 2 order by 1, 2
"""


def parse_since(raw: str | None) -> int:
    """RFC 3339 (`2025-05-01T00:00:00Z`) to milliseconds; nothing given means the beginning."""
    if raw is None or raw == "":
        return 0
    try:
        moment = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequest(
            f"?since={raw[:40]!r} must be an RFC 3339 time with its offset, "
            "e.g. 2025-05-01T00:00:00Z (write + as %2B in a URL)",
            field="since",
        )
    return int(moment.timestamp() * 1000)


async def compute(
    db: Database, site_id: int | None, automation_id: int | None, since: int
) -> dict[str, Any]:
    params = {"site_id": site_id, "automation_id": automation_id, "since": since}
    funnel = await db.fetchone(FUNNEL, params)
    assert funnel is not None
    answer: dict[str, Any] = dict(funnel)
    revenue = await db.fetchall(REVENUE, params)
    answer["revenue"] = {row["currency"]: round(row["amount"], 2) for row in revenue}
    answer["skipped"], answer["cancelled"] = {}, {}
    for row in await db.fetchall(BY_REASON, params):
        answer[row["status"]][row["reason"]] = row["n"]
    return answer


async def metrics(request: Request) -> Response:
    svc = require_admin(request)
    site_id = int_param(request, "site_id", None)
    automation_id = int_param(request, "automation_id", None)
    since = parse_since(request.query_params.get("since"))
    if site_id is not None and not await svc.db.fetchone(
        "select 1 from sites where id = ?", (site_id,)
    ):
        raise NotFound(f"no site with id {site_id}")
    return JSONResponse(await compute(svc.db, site_id, automation_id, since))


routes = [Route("/metrics", metrics, methods=["GET"])]
