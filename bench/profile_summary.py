"""Where a server's CPU went, from the `py-spy record -f raw` files of `bench/ingest --profile`.

Each sample of the event-loop thread goes to the first category whose rule matches, so the
shares add up to 100% of that thread; samples of the other threads (aiosqlite runs SQLite in a
thread per connection) are only counted. Multiply a share by the "loop" CPU per request that
bench/ingest prints to get microseconds per request:

    python bench/profile_summary.py DIR/POST_e_x1.txt [--top 20]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME_FILE = re.compile(r"\((.*?):\d+\)$")

# (category, text in the whole stack, or in the file of the innermost frame)
STACK_RULES = (
    ("uvicorn access log (logging)", "logging/__init__.py"),
    ("uvicorn access log (logging)", "uvicorn/logging.py"),
    ("is_bot regex (collector/bots.py)", "collector/bots.py"),
)
LEAF_RULES = (
    ("event loop: uvloop in C, socket syscalls", "asyncio/runners.py"),
    ("uvicorn httptools protocol: parse, transport.write", "uvicorn/"),
    ("starlette: middleware stack, routing, Request/Response", "starlette/"),
    ("collector MetricsMiddleware", "collector/metrics.py"),
    ("validation: collector/events.py, urlsplit", "collector/events.py"),
    ("validation: collector/events.py, urlsplit", "urllib/parse.py"),
    ("group commit, main-thread side (writer, db, aiosqlite)", "collector/writer.py"),
    ("group commit, main-thread side (writer, db, aiosqlite)", "collector/db.py"),
    ("group commit, main-thread side (writer, db, aiosqlite)", "aiosqlite/"),
    ("group commit, main-thread side (writer, db, aiosqlite)", "asyncio/"),
    ("collector/ingest.py and the rest of collector", "collector/"),
)


def category(frames: list[str]) -> str:
    stack = ";".join(frames)
    for name, needle in STACK_RULES:
        if needle in stack:
            return name
    match = FRAME_FILE.search(frames[-1])
    leaf = match.group(1) if match else ""
    for name, needle in LEAF_RULES:
        if needle in leaf:
            return name
    return "other"


def read_samples(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            samples.append((stack.split(";"), int(count)))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=0, help="also list the N busiest frames")
    args = parser.parse_args()
    for path in args.files:
        samples = read_samples(path)
        threads = sum(n for frames, n in samples if "threading.py" in frames[0])
        loop = [(frames, n) for frames, n in samples if "threading.py" not in frames[0]]
        total = sum(n for _, n in loop) or 1
        shares: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        for frames, n in loop:
            shares[category(frames)] += n
            leaves[frames[-1]] += n
        print(f"{path.name}: {total} samples of the event-loop thread, {threads} of the others")
        for name, n in shares.most_common():
            print(f"  {100 * n / total:5.1f}%  {name}")
        for frame, n in leaves.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  self  {frame}")


if __name__ == "__main__":
    main()
