"""The JSON admin API under `/api/v1`; each resource module contributes its routes."""

from __future__ import annotations

from starlette.routing import BaseRoute

from collector.api import (
    automations,
    contacts,
    events,
    messages,
    metrics,
    openapi,
    server_events,
    sites,
    templates,
)


def routes() -> list[BaseRoute]:
    return [
        *openapi.routes,
        *sites.routes,
        *events.routes,
        *server_events.routes,
        *contacts.routes,
        *messages.routes,
        *templates.routes,
        *automations.routes,
        *metrics.routes,
    ]
