"""Polling throughput against PostgreSQL with 1 and with 3 ``monitor run`` processes sharing the feeds.

A local server (its own process) serves N feeds x M items; for each process count a fresh database is
made, the processes are started together, and the clock runs from their start until every item is
stored. Start-up (interpreter, model load, schema check) is inside the wall time, so the table also
gives the polling span: from the first item stored to the last. Each feed must be fetched once.

Needs a PostgreSQL server URL (``.ci/postgres start DIR`` makes one):
    .venv/bin/python benchmarks/bench_scale.py --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from bench_poll import serve
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]


def fresh_database(server_url: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def write_config(folder: Path, url: str, port: int, feeds: int) -> Path:
    config = {
        "database": url,
        "feeds": [{"id": f"f{i}", "url": f"http://127.0.0.1:{port}/f{i}.xml"} for i in range(feeds)],
        "poll": {"interval": "1h", "tick": "1s", "batch": 50, "per_host": 16, "max_concurrency": 16, "jitter": 0},
        "classifier": {"model_dir": str(ROOT / "models"), "seeds_dir": str(ROOT / "seeds")},
        "report": {"dir": str(folder / "reports"), "schedule": "0 6 * * 1"},
        "log": {"level": os.environ.get("BENCH_LOG_LEVEL", "WARNING")},  # errors and failed feeds: service-N.log
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def stored(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            items = int(connection.execute(text("SELECT count(*) FROM item")).scalar_one())
            polls = int(connection.execute(text("SELECT count(*) FROM poll_log")).scalar_one())
            return items, polls
    except Exception:  # the schema is not there yet while the first process starts
        return 0, 0
    finally:
        engine.dispose()


def story_sizes(url: str) -> dict[str, int]:
    """How the items grouped: the cost of story building grows with the size of the stories it reloads."""
    engine = create_engine(url)
    with engine.connect() as connection:
        sizes = connection.execute(text("SELECT count(*) FROM story_item GROUP BY story_id")).scalars().all()
    engine.dispose()
    return {"stories": len(sizes), "largest": max(sizes, default=0)}


def run(server_url: str, port: int, feeds: int, items: int, processes: int) -> dict[str, Any]:
    url = fresh_database(server_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_KEEP_DIR")) as folder:
        config = write_config(Path(folder), url, port, feeds)
        started = time.perf_counter()
        running = [
            subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                env=env,
                cwd=folder,
                stderr=(Path(folder) / f"service-{n}.log").open("w"),
            )
            for n in range(processes)
        ]
        first = None
        try:
            while True:
                count, polls = stored(url)
                if count and first is None:
                    first = time.perf_counter()
                if count >= feeds * items:
                    break
                if time.perf_counter() - started > 1800:
                    raise SystemExit(f"timed out with {count} of {feeds * items} items")
                time.sleep(0.25)
            done = time.perf_counter()
        finally:
            for process in running:
                process.send_signal(signal.SIGTERM)
            for process in running:
                process.wait(timeout=60)
            failures = [line for log in Path(folder).glob("service-*.log") for line in log.read_text().splitlines()
                        if "level=ERROR" in line or "feed_failed" in line]  # fmt: skip
            for line in failures[:5]:
                print("service error:", line[:300])
            if os.environ.get("BENCH_KEEP_DIR"):
                for log in Path(folder).glob("service-*.log"):
                    (Path(os.environ["BENCH_KEEP_DIR"]) / log.name).write_text(log.read_text())
    sizes = story_sizes(url)
    drop_database(server_url, url)
    wall, span = done - started, done - (first or started)
    return {"processes": processes, "wall": wall, "span": span, "items": feeds * items, "polls": polls, **sizes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"), required=False)
    parser.add_argument("--feeds", type=int, default=600)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--processes", default="1,3")
    args = parser.parse_args()
    if not args.postgres:
        print("bench_scale: skipped, no PostgreSQL server (give --postgres URL or set MONITOR_TEST_POSTGRES_URL)")
        return
    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(queue, args.feeds, args.items), daemon=True)
    server.start()
    port = queue.get(timeout=60)
    rows = [run(args.postgres, port, args.feeds, args.items, int(n)) for n in args.processes.split(",")]
    server.terminate()
    print(
        f"PostgreSQL, {args.feeds} feeds x {args.items} items, local server in its own process, {os.cpu_count()} cores"
    )
    print(
        f"{'processes':>9}{'wall s':>9}{'span s':>9}{'items/s (wall)':>16}{'items/s (span)':>16}{'polls':>7}"
        f"{'stories':>9}{'largest':>9}"
    )
    for r in rows:
        print(
            f"{r['processes']:>9}{r['wall']:>9.1f}{r['span']:>9.1f}{r['items'] / r['wall']:>16,.0f}"
            f"{r['items'] / r['span']:>16,.0f}{r['polls']:>7}{r['stories']:>9}{r['largest']:>9}"
        )
    if len(rows) > 1:
        one, many = rows[0], rows[-1]
        print(
            f"throughput ratio {many['processes']} : {one['processes']} processes: "
            f"{one['wall'] / many['wall']:.2f} (wall), {one['span'] / many['span']:.2f} (span)"
        )


if __name__ == "__main__":
    main()
