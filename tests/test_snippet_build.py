"""The committed snippet (collector/static/s.js) is within its size budget and is exactly what
the source in snippet/ builds to, so installing the package needs no Node.

Building needs Node and `npm ci` in snippet/. Without them the build check is skipped locally
and fails in CI (CI=true), where they are installed.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "snippet"
BUILT = ROOT / "collector" / "static" / "s.js"
# Bytes after gzip level 9, as the issue asks, with every contract behaviour (bench/snippet prints
# the figures; snippet/README.md says what bought what).
BUDGET = 1500


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, 9, mtime=0))


def need_build_tools() -> str:
    """Path of node, or skip (fail in CI) when node or snippet/node_modules is missing."""
    node = shutil.which("node")
    missing = [
        what
        for what, ok in (
            ("node", node is not None),
            (
                "snippet/node_modules (run `npm ci` in snippet/)",
                (SNIPPET / "node_modules").is_dir(),
            ),
        )
        if not ok
    ]
    if missing:
        message = "cannot build the snippet: missing " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert node is not None
    return node


def test_snippet_is_within_budget() -> None:
    size = gzipped_size(BUILT.read_bytes())
    assert size <= BUDGET, f"collector/static/s.js is {size} B gzipped, budget {BUDGET} B"


def test_committed_snippet_matches_a_fresh_build(tmp_path: Path) -> None:
    node = need_build_tools()
    out = tmp_path / "s.js"
    result = subprocess.run(
        [node, str(SNIPPET / "build.mjs"), str(out)],
        cwd=SNIPPET,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == BUILT.read_bytes(), (
        "collector/static/s.js is stale: run `npm run build` in snippet/ and commit it"
    )
