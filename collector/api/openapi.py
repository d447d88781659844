"""`GET /api/v1/openapi.json`: the admin API described for clients and schema-driven tests.

Written by hand from the resource list: the API is small and its field names are the contract,
so a generator that guesses them from code would describe less, not more.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.consent import HASHED_FIELDS

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}

SITE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "name": {"type": "string"},
        "origins": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "country": {"type": "string", "default": "US"},
        "timezone": {"type": "string"},
        "allowed_countries": {"type": "array", "items": {"type": "string"}},
        "sender": {"type": ["string", "null"]},
        "attribution_click_seconds": {"type": "integer", "default": 432000},
        "attribution_delivery_seconds": {"type": "integer", "default": 43200},
        "send_window": {
            "type": "object",
            "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
        },
        "daily_cap": {"type": "integer", "default": 1},
        "double_opt_in": {"type": "boolean"},
        "help_text": {"type": "string"},
        "pricing_paths": {"type": "array", "items": {"type": "string"}},
        "key": {"type": "string", "readOnly": True},
        "secret": {"type": "string", "readOnly": True},
    },
}

EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "site_id": {"type": "integer"},
        "name": {"type": "string"},
        "visitor_id": {"type": ["string", "null"]},
        "session_id": {"type": ["string", "null"]},
        "contact_id": {"type": ["integer", "null"]},
        "url": {"type": ["string", "null"]},
        "title": {"type": ["string", "null"]},
        "props": {"type": "object"},
        "at": {"type": "string", "format": "date-time"},
    },
}

TEMPLATE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "site_id": {"type": "integer"},
        "name": {"type": "string"},
        "body": {"type": "string", "description": "Jinja2 (sandboxed), checked on save"},
        "sample": {"type": ["string", "null"], "readOnly": True},
        "encoding": {"enum": ["GSM-7", "UCS-2", None], "readOnly": True},
        "characters": {"type": ["integer", "null"], "readOnly": True},
        "segments": {"type": ["integer", "null"], "readOnly": True},
        "warnings": {"type": "array", "items": {"type": "string"}, "readOnly": True},
    },
}

PREVIEW_REQUEST = {
    "type": "object",
    "required": ["body"],
    "properties": {"body": {"type": "string"}, "site_id": {"type": "integer"}},
}

PREVIEW = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "encoding": {"enum": ["GSM-7", "UCS-2"]},
        "characters": {"type": "integer"},
        "segments": {"type": "integer"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "opt_out_added": {"type": "boolean"},
    },
}

AUTOMATION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "site_id": {"type": "integer"},
        "name": {"type": "string"},
        "trigger": {
            "type": "string",
            "description": "cart_abandoned, form_abandoned, pricing_viewed or an event name",
        },
        "path_pattern": {"type": ["string", "null"], "description": "glob on the path, /..."},
        "min_cart_value": {"type": ["number", "null"], "minimum": 0},
        "delay_seconds": {"type": "integer", "default": 900, "maximum": 2592000},
        "goals": {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "description": "event names, cart_emptied, same_form_submit; null: the defaults",
        },
        "effective_goals": {"type": "array", "items": {"type": "string"}, "readOnly": True},
        "template_id": {"type": "integer"},
        "active": {"type": "boolean", "default": True},
        "max_age_seconds": {
            "type": "integer",
            "default": 172800,
            "description": "> delay_seconds; at most 172800 for built-in triggers",
        },
    },
}

COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
METRICS = {
    "type": "object",
    "properties": {
        **{
            name: {"type": "integer"}
            for name in ("triggered", "sent", "delivered", "clicked", "replied", "converted")
        },
        "revenue": {"type": "object", "additionalProperties": {"type": "number"}},
        "skipped": COUNTS,
        "cancelled": COUNTS,
    },
}

CONSENT = {
    "type": "object",
    "description": "a consent ledger record; `hash` chains it to the one before (docs/contacts.md)",
    "properties": {
        **{name: {"type": ["string", "null"]} for name in (*HASHED_FIELDS, "hash")},
        # the ledger's own fields, then the ones that are not strings
        "id": {"type": "integer"},
        "contact_id": {"type": "integer"},
        "site_id": {"type": "integer"},
        "seq": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "recorded_at": {"type": "string", "format": "date-time"},
    },
}

CONTACT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "site_id": {"type": "integer"},
        "phone": {"type": "string", "description": "E.164"},
        "first_name": {"type": ["string", "null"]},
        "status": {"enum": ["pending", "active", "expired", "opted_out", "undeliverable"]},
        "created_at": {"type": "string", "format": "date-time", "readOnly": True},
        "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
        "consents": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Consent"},
            "readOnly": True,
        },
        "consent_chain": {"type": "object", "readOnly": True},
        "events": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Event"},
            "readOnly": True,
        },
        "messages": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Message"},
            "readOnly": True,
        },
        "inbound": {"type": "array", "items": {"type": "object"}, "readOnly": True},
        "visitors": {"type": "array", "items": {"type": "object"}, "readOnly": True},
    },
}

CONTACT_CREATE = {
    "type": "object",
    "description": "a server-side opt-in with the site's own consent proof",
    "required": ["site_id", "phone", "consent_text"],
    "properties": {
        "site_id": {"type": "integer"},
        "phone": {"type": "string"},
        "first_name": {"type": "string"},
        "consent_text": {"type": "string", "maxLength": 1000},
        "source": {"type": "string", "maxLength": 100},
        "ip": {"type": "string"},
        "consented_at": {"type": "string", "format": "date-time"},
        "page_url": {"type": "string"},
        "user_agent": {"type": "string"},
        "visitor_id": {"type": "string"},
    },
}

MESSAGE = {
    "type": "object",
    "readOnly": True,
    "properties": {
        "id": {"type": "integer"},
        "site_id": {"type": ["integer", "null"]},
        "contact_id": {"type": ["integer", "null"]},
        "automation_id": {"type": ["integer", "null"]},
        "kind": {"enum": ["automation", "confirmation", "keyword_reply", "manual"]},
        "to": {"type": "string"},
        "body": {"type": "string"},
        "status": {
            "enum": ["scheduled", "sending", "sent", "delivered", "failed", "skipped", "cancelled"]
        },
        "reason": {"type": ["string", "null"]},
        "due_at": {"type": "string", "format": "date-time"},
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "delivered_at": {"type": ["string", "null"], "format": "date-time"},
        "segments": {"type": ["integer", "null"]},
        "price": {"type": ["number", "null"]},
        "currency": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
    },
]
ID_PARAM = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {"description": "ok", "content": {"application/json": {"schema": schema}}},
        "4XX": {"description": "error", "content": {"application/json": {"schema": _ref("Error")}}},
    }
    return responses


def _listing(item: str, filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    page = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    }
    return {"parameters": PAGE_PARAMS + (filters or []), "responses": _answer(page)}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]


def _resource(name: str, schema: str) -> dict[str, Any]:
    """List, create, read, update and delete of one resource, with `?site_id=` on the list."""
    body = {"content": {"application/json": {"schema": _ref(schema)}}}
    return {
        f"/{name}": {
            "get": _listing(schema, _query("site_id")),
            "post": {"requestBody": body, "responses": _answer(_ref(schema), "201")},
        },
        f"/{name}/{{id}}": {
            "parameters": ID_PARAM,
            "get": {"responses": _answer(_ref(schema))},
            "patch": {"requestBody": body, "responses": _answer(_ref(schema))},
            "delete": {"responses": {"204": {"description": "deleted"}}},
        },
    }


def document() -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": _ref("Site")}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sms-retarget admin API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR,
                "Site": SITE,
                "Event": EVENT,
                "Template": TEMPLATE,
                "Automation": AUTOMATION,
                "Metrics": METRICS,
                "Contact": CONTACT,
                "ContactCreate": CONTACT_CREATE,
                "Consent": CONSENT,
                "Message": MESSAGE,
            },
        },
        "paths": {
            "/sites": {
                "get": _listing("Site"),
                "post": {"requestBody": body, "responses": _answer(_ref("Site"), "201")},
            },
            "/sites/{id}": {
                "parameters": ID_PARAM,
                "get": {"responses": _answer(_ref("Site"))},
                "patch": {"requestBody": body, "responses": _answer(_ref("Site"))},
                "delete": {"responses": {"204": {"description": "deleted"}}},
            },
            "/events": {
                "get": _listing("Event", _query("site_id", "name", "visitor_id", "contact_id")),
                "post": {
                    "summary": "a server-side event, with Authorization: Bearer SITE_SECRET",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "visitor_id": {"type": "string"},
                                        "phone": {"type": "string"},
                                        "props": {"type": "object"},
                                        "id": {"type": "string"},
                                        "at": {"type": "string", "format": "date-time"},
                                        "url": {"type": "string"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": _answer(_ref("Event"), "201"),
                },
            },
            "/events/{id}": {"parameters": ID_PARAM, "get": {"responses": _answer(_ref("Event"))}},
            **_resource("templates", "Template"),
            "/templates/preview": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": PREVIEW_REQUEST}}},
                    "responses": _answer(PREVIEW),
                }
            },
            **_resource("automations", "Automation"),
            "/metrics": {
                "get": {
                    "parameters": _query("site_id", "automation_id", "since"),
                    "responses": _answer(_ref("Metrics")),
                }
            },
            "/contacts": {
                "get": _listing("Contact", _query("site_id", "status", "phone")),
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": _ref("ContactCreate")}}
                    },
                    "responses": {
                        **_answer(_ref("Contact"), "201"),
                        "200": {"description": "proof added to an existing contact"},
                        "409": {"description": "the number opted out or was erased"},
                    },
                },
            },
            "/contacts/{id}": {
                "parameters": ID_PARAM,
                "get": {"responses": _answer(_ref("Contact"))},
                "patch": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "first_name": {"type": ["string", "null"]},
                                        "status": {"enum": ["opted_out"]},
                                    },
                                }
                            }
                        }
                    },
                    "responses": _answer(_ref("Contact")),
                },
                "delete": {"responses": {"204": {"description": "erased"}}},
            },
            "/messages": {
                "get": _listing(
                    "Message", _query("contact_id", "status", "automation_id", "kind", "site_id")
                )
            },
            "/messages/{id}": {
                "parameters": ID_PARAM,
                "get": {"responses": _answer(_ref("Message"))},
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi, methods=["GET"])]
