"""What every admin API resource needs from a request: bearer auth, a JSON body, a page."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from collector.errors import BadRequest, Unauthorized
from collector.services import Services

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
MAX_JSON_BODY = 1024 * 1024


def services(request: Request) -> Services:
    return request.state.services  # type: ignore[no-any-return]


def require_admin(request: Request) -> Services:
    """The admin token (`SMSR_ADMIN_TOKEN`) as `Authorization: Bearer TOKEN`, compared in constant time."""
    svc = services(request)
    token = svc.settings.admin_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if (
        not token
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        raise Unauthorized(
            "send Authorization: Bearer <SMSR_ADMIN_TOKEN>"
            if token
            else "API token access is off; set SMSR_ADMIN_TOKEN"
        )
    return svc


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise BadRequest("body too large", code="too_large")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON", code="malformed") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="malformed")
    return data


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def answer(self, items: list[Any], total: int) -> dict[str, Any]:
        return {"items": items, "page": self.page, "per_page": self.per_page, "total": total}


def page_of(request: Request) -> Page:
    page = int_param(request, "page", 1, minimum=1)
    per_page = int_param(request, "per_page", DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)
    return Page(page, per_page)


def int_param(
    request: Request, name: str, default: int | None, minimum: int = 1, maximum: int = 2**62
) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise BadRequest(
            f"?{name}={raw!r} must be a whole number from {minimum} to {maximum}", field=name
        )
    return int(raw)


def path_id(request: Request) -> int:
    raw = request.path_params["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"id {raw!r} is not a number", field="id")
    return int(raw)
