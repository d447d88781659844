"""Vonage SMS API webhooks: `/webhooks/vonage/inbound` (texts) and `/webhooks/vonage/status`
(delivery receipts), each by GET (query string) or POST (form or JSON), as the account sends them.

With `VONAGE_SIGNATURE_SECRET` set, every request must carry a valid `sig` no older than 24 hours
(`collector.signatures`, `VONAGE_SIGNATURE_METHOD`): otherwise 401 and nothing is stored. Replays
inside that window are harmless: inbound message ids and receipts are deduplicated. Answers are
200 with an empty body, also for a receipt about a message we do not know.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.errors import BadRequest, PayloadTooLarge, Unauthorized
from collector.keywords import Context, Inbound, handle_inbound
from collector.phones import from_msisdn
from collector.receipts import apply_receipt
from collector.services import Services
from collector.signatures import verify_webhook

MAX_BODY = 64 * 1024
MAX_TEXT = 3200


async def webhook_params(request: Request) -> dict[str, str]:
    """Query string and body (form or JSON) merged, every value a string."""
    params = dict(request.query_params)
    if request.method != "POST":
        return params
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"webhook body over {MAX_BODY} bytes")
    if not body.strip():
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("webhook body is not UTF-8", code="malformed") from None
    if content_type == "application/json" or text.lstrip().startswith("{"):
        try:
            data = orjson.loads(text)  # unlike json, refuses lone surrogates SQLite can't store
        except orjson.JSONDecodeError:
            raise BadRequest("webhook body is not valid JSON", code="malformed") from None
        if not isinstance(data, dict):
            raise BadRequest("webhook JSON must be an object", code="malformed")
        for key, value in data.items():
            if isinstance(value, (dict, list)):
                raise BadRequest(f"webhook field {key!r} must be a string", field=key)
            params[str(key)] = value if isinstance(value, str) else orjson.dumps(value).decode()
        return params
    params.update(parse_qsl(text, keep_blank_values=True))
    return params


def check_signature(services: Services, params: dict[str, str]) -> None:
    secret = services.settings.vonage_signature_secret
    if not secret:
        return
    method = services.settings.vonage_signature_method
    if not verify_webhook(params, secret, method, time.time()):
        raise Unauthorized(
            "webhook signature missing, wrong or older than 24 hours; check "
            "VONAGE_SIGNATURE_SECRET and VONAGE_SIGNATURE_METHOD against the Vonage dashboard",
            code="bad_signature",
        )


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value or len(value) > 100:
        raise BadRequest(f"{name} is missing", field=name)
    return value


def _part(params: dict[str, str], name: str) -> int | None:
    value = params.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 6 else None


async def inbound_webhook(request: Request) -> Response:
    services: Services = request.state.services
    params = await webhook_params(request)
    check_signature(services, params)
    msisdn = from_msisdn(_required(params, "msisdn"))
    if msisdn is None:
        raise BadRequest(f"msisdn {params['msisdn']!r} is not a phone number", field="msisdn")
    text = params.get("text", "")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"text is longer than {MAX_TEXT} characters", field="text")
    concat = params.get("concat", "").lower() == "true"
    inbound = Inbound(
        message_id=_required(params, "messageId"),
        msisdn=msisdn,
        to=_required(params, "to"),
        text=text,
        concat_ref=params.get("concat-ref") if concat else None,
        concat_part=_part(params, "concat-part") if concat else None,
        concat_total=_part(params, "concat-total") if concat else None,
    )
    ctx = Context(
        suppression_key=services.suppression_key,
        default_sender=services.settings.vonage_from,
        expiry_hours=services.settings.optin_expiry_hours,
    )
    async with services.db.transaction() as conn:
        replied = await handle_inbound(conn, ctx, inbound, int(time.time() * 1000))
    if replied:
        services.outbox.kick()
    return Response(status_code=200)


async def status_webhook(request: Request) -> Response:
    services: Services = request.state.services
    params = await webhook_params(request)
    check_signature(services, params)
    _required(params, "messageId")
    _required(params, "status")
    async with services.db.transaction() as conn:
        await apply_receipt(conn, params, int(time.time() * 1000))
    return Response(status_code=200)


routes = [
    Route("/webhooks/vonage/inbound", inbound_webhook, methods=["GET", "POST"]),
    Route("/webhooks/vonage/status", status_webhook, methods=["GET", "POST"]),
]
