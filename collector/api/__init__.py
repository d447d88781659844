"""The JSON admin API under `/api/v1`; each resource module contributes its routes."""

from __future__ import annotations

from starlette.routing import BaseRoute

from collector.api import events, openapi, sites


def routes() -> list[BaseRoute]:
    return [*openapi.routes, *sites.routes, *events.routes]
