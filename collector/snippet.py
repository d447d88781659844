"""`GET /s.js`: the built snippet, cached by browsers and revalidated with its ETag.

The file is read once when the app starts; it is tiny, so it is kept in memory both plain and
gzipped (the size budget is measured gzipped, and most browsers take it that way).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

SNIPPET_PATH = Path(__file__).with_name("static") / "s.js"
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"


class SnippetFile:
    def __init__(self, path: Path = SNIPPET_PATH) -> None:
        self.body = path.read_bytes()
        self.gzipped = gzip.compress(self.body, 9, mtime=0)
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    async def respond(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = self.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)
