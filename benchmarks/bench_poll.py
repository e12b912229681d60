"""Polling throughput: 1,000 feeds x 50 items from a local server (in its own process).

First cycle: wall time, items/s, peak memory. Second cycle: every feed answers 304 Not Modified to
the validators stored by the first; its cost as a fraction of the first.

Prints a table. Run: .venv/bin/python benchmarks/bench_poll.py [--feeds 1000] [--items 50]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor import schema, service
from monitor.classify import Classifier
from monitor.config import settings_from_mapping

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "strike drone base talks ceasefire market shares league minister rocket port convoy army militia truce "
    "election court storm rally oil freight bank summit border village city"
).split()


def _words(rng: random.Random, n: int) -> str:
    """A few conflict words among names drawn from a large vocabulary, so that items group into stories
    of realistic size (drawn from the 25 words alone, every item would join a few giant stories)."""
    return " ".join(
        rng.choice(WORDS) if rng.random() < 0.3 else f"{rng.choice('bdgkmprstvz')}a{rng.randrange(5000)}"
        for _ in range(n)
    )


def feed_body(number: int, items: int) -> bytes:
    rng = random.Random(number)
    entries = "".join(
        f"<item><guid>b{number}-{j}</guid><title>{_words(rng, 7)} {number} {j}</title>"
        f"<link>https://bench.example/{number}/{j}</link><pubDate>Mon, 0{1 + j % 9} Jan 2024 10:00:00 GMT</pubDate>"
        f"<description>{_words(rng, 12)}</description></item>"
        for j in range(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>B{number}</title>{entries}</channel></rss>'.encode()
    )


def serve(port_queue: Any, feeds: int, items: int) -> None:
    bodies = {f"/f{i}.xml": feed_body(i, items) for i in range(feeds)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            etag = f'"{self.path}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = bodies[self.path]
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    args = parser.parse_args()
    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(queue, args.feeds, args.items), daemon=True)
    server.start()
    port = queue.get(timeout=60)
    model = Classifier.load(ROOT / "models" / "classifier.npz")
    with tempfile.TemporaryDirectory() as folder:
        feeds = [{"id": f"f{i}", "url": f"http://127.0.0.1:{port}/f{i}.xml"} for i in range(args.feeds)]
        settings = settings_from_mapping(
            {"database": f"sqlite:///{folder}/poll.db", "feeds": feeds, "poll": {"max_concurrency": 16, "per_host": 16}}
        )
        engine = schema.make_engine(settings.database)
        service.sync_config(settings, engine, datetime.now(UTC))
        rows = []
        for cycle in ("first (200)", "second (304)"):
            started = time.perf_counter()
            outcomes = service.poll_feeds(settings, engine, model, datetime.now(UTC))
            seconds = time.perf_counter() - started
            new = sum(o.new for o in outcomes)
            errors = sum(1 for o in outcomes if o.status == "error")
            rows.append((cycle, seconds, new, errors))
    server.terminate()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.feeds} feeds x {args.items} items, local server in its own process, 16 fetches in flight")
    print(f"{'cycle':<14}{'seconds':>9}{'new items':>11}{'items/s':>9}{'errors':>8}")
    for cycle, seconds, new, errors in rows:
        print(f"{cycle:<14}{seconds:>9.1f}{new:>11,}{new / seconds:>9,.0f}{errors:>8}")
    print(f"304 cycle / first cycle: {rows[1][1] / rows[0][1]:.1%}; peak RSS of the poller {peak:,.0f} MB")


if __name__ == "__main__":
    main()
