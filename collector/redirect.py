"""`GET /r/{code}`: a tracked link in a text. Counts the click, then redirects (302).

Bots (link previews fetch every URL in a text) and HEAD requests get the redirect without a token
and are not counted; an unknown code gets a small 404 page, never an error trace. Kept apart from
collector/links.py because it needs ingest's client-IP rule while ingest needs links.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from collector import links
from collector.bots import is_bot
from collector.ingest import client_ip
from collector.services import Services

CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_USER_AGENT = 500
NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Link not found</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>This link does not work</h1>
<p>It may have been mistyped or cut short. Please open the shop's website directly.</p>
</body></html>
"""


async def follow(request: Request) -> Response:
    services: Services = request.state.services
    code = request.path_params["code"]
    if not CODE.match(code):
        return not_found()
    user_agent = request.headers.get("user-agent", "")
    if request.method != "GET" or is_bot(user_agent):
        target = await links.target_of(services.db, code)
        return redirect(target) if target else not_found()
    ip = client_ip(request, services.settings.trust_proxy)
    url = await links.record_click(services.db, code, ip, user_agent[:MAX_USER_AGENT])
    return redirect(url) if url else not_found()


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def not_found() -> Response:
    return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers={"Cache-Control": "no-store"})
