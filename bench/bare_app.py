"""The baseline for bench/ingest: one Starlette route that answers 204 and does nothing else.

It is served the way `smsretarget serve` serves the collector (`collector.cli.serve`): one
uvicorn worker on a pre-bound socket, the same `uvicorn.Config` options, so loop and http
"auto" pick uvloop and httptools, and the same log level (access log included).
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.cli import bind_socket


async def bare(request: Request) -> Response:
    return Response(status_code=204)


def create_bare_app() -> Starlette:
    return Starlette(routes=[Route("/e", bare, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    sock = bind_socket(args.host, args.port)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # Keep in step with collector.cli.serve().
    config = uvicorn.Config(
        create_bare_app(),
        log_level=args.log_level.lower(),
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
