"""Dash app speed in a real browser: the jobs page's first rows and a 200-job compare.

A fresh PostgreSQL database and a real HQ server (subprocess) and ``hq dash`` (subprocess);
Debian's Chromium driven by Playwright. Jobs are put into the database directly with SQL (the
server's own table models), since submitting 100,000 jobs through the API would measure the API.

Baseline, measured in the same run: the same pages with 100 jobs in the database and a compare of
10 jobs. Then the database grows to ``--jobs`` (100,000) jobs and the compare to ``--sweep``
(200) jobs. Budgets: first rows within 1 s, the compare's three charts within 3 s.
Each figure is the median of ``--runs`` page loads in a warm browser (the first, cold load, which
also fetches Dash's scripts, is shown apart). Everything started here is stopped by its PID.
Run from the repository root: ``python -m bench.dash`` (as a file, it would shadow ``dash``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import create_engine, insert

from bench.common import (
    ADMIN_TOKEN,
    Child,
    create_database,
    drop_database,
    free_port,
    pg_url,
    stop_all,
)
from hq.client import HQClient
from hq.server.db.models import Job, Sweep

SCRIPT = "bench-fit"
DIGEST = "sha256:" + "b" * 64
MANIFEST: dict[str, Any] = {
    "name": SCRIPT,
    "command": ["python", "fit.py"],
    "params": {
        "type": "object",
        "properties": {"alpha": {"type": "number", "minimum": 0}, "target": {"type": "string"}},
    },
}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIRST_ROWS_BUDGET_S = 1.0
COMPARE_BUDGET_S = 3.0
INSERT_BATCH = 5000
SCROLL_ROW = 2000
START_TIMEOUT_S = 30.0
CHARTS_DRAWN_JS = """(n) => ['compare-scatter', 'compare-box', 'compare-parallel'].every(id => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!gd || !gd.data || gd.data.length === 0) return false;
    return id !== 'compare-scatter' || (gd.data[0].x && gd.data[0].x.length === n);
})"""


def start(cmd: list[str], env: dict[str, str], log: Path, ready_url: str) -> None:
    """Start ``cmd`` (stopped with its whole process group) and wait until ``ready_url`` answers."""
    process = Child(cmd, log=log, env=env, group=True).proc
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{cmd} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    sys.exit(f"{cmd} did not start: {log.read_text()[-2000:]}")


def job_rows(n: int, *, start: datetime, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """n finished jobs of the bench script, one second apart from ``start``."""
    rng = random.Random(n)
    rows = []
    for i in range(n):
        alpha = [0.0, 0.1, 1.0, 10.0][i % 4] if sweep_id else rng.random()
        created = start + timedelta(seconds=i)
        status = "succeeded" if sweep_id or rng.random() < 0.9 else "failed"
        params = {"alpha": alpha, "target": "y"}
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "script_name": SCRIPT,
                "script_version": 1,
                "image": f"hq/{SCRIPT}:latest",
                "digest": DIGEST,
                "manifest": MANIFEST,
                "params": params,
                "inputs": {},
                "status": status,
                "priority": 0,
                "queue": "default",
                "labels": [],
                "gpus": 0,
                "attempts": 1,
                "max_attempts": 3,
                "timeout_s": 600,
                "reuse": False,
                "cache_key": hashlib.sha256(f"{alpha}:{i}".encode()).hexdigest(),
                "sweep_id": sweep_id,
                "repeat": i // 4 if sweep_id else 0,
                "cancel_requested": False,
                "run_after": created,
                "metrics": {
                    "r2": 0.9 - 0.01 * alpha + rng.gauss(0, 0.01),
                    "rmse": 1.0 + alpha + rng.gauss(0, 0.05),
                }
                if status == "succeeded"
                else {},
                "exit_code": 0 if status == "succeeded" else 1,
                "created_at": created,
                "started_at": created + timedelta(seconds=1),
                "finished_at": created + timedelta(seconds=3),
            }
        )
    return rows


def insert_jobs(
    db_url: str, rows: list[dict[str, Any]], sweep: dict[str, Any] | None = None
) -> float:
    began = time.perf_counter()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        if sweep is not None:
            conn.execute(insert(Sweep.__table__), [sweep])
        for i in range(0, len(rows), INSERT_BATCH):
            conn.execute(insert(Job.__table__), rows[i : i + INSERT_BATCH])
    engine.dispose()
    return time.perf_counter() - began


def sweep_row(sweep_id: str, total: int) -> dict[str, Any]:
    return {
        "id": sweep_id,
        "script_name": SCRIPT,
        "script_version": 1,
        "total": total,
        "spec": {"script": SCRIPT, "grid": {"alpha": [0.0, 0.1, 1.0, 10.0]}},
        "created_at": datetime.now(UTC),
    }


def time_first_rows(page: Page, url: str) -> float:
    began = time.perf_counter()
    page.goto(f"{url}/jobs", wait_until="commit")
    page.wait_for_selector(
        "#jobs-grid .ag-center-cols-container .ag-row[row-index='0'] [col-id='status']:not(:empty)",
        timeout=30_000,
    )
    return time.perf_counter() - began


def time_scroll(page: Page, url: str) -> float:
    """Scroll down to row 2,000, a block (100 rows, one cursor page) at a time."""
    time_first_rows(page, url)
    began = time.perf_counter()
    page.wait_for_function(
        """(target) => {
            const api = dash_ag_grid.getApi('jobs-grid');
            const row = api.getDisplayedRowAtIndex(target);
            if (row && row.data) { return true; }
            api.ensureIndexVisible(api.getDisplayedRowCount() - 1, 'bottom');
            return false;
        }""",
        arg=SCROLL_ROW,
        timeout=120_000,
        polling=20,
    )
    return time.perf_counter() - began


def time_compare(page: Page, url: str, sweep_id: str, n: int) -> float:
    began = time.perf_counter()
    page.goto(f"{url}/compare?sweep={sweep_id}", wait_until="commit")
    page.wait_for_function(CHARTS_DRAWN_JS, arg=n, timeout=60_000, polling=20)
    return time.perf_counter() - began


def measure(page: Page, fn: Any, runs: int, *args: Any) -> tuple[float, float]:
    """(cold, median warm) seconds."""
    cold = fn(page, *args)
    warm = [fn(page, *args) for _ in range(runs)]
    return cold, statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs in the database")
    parser.add_argument("--sweep", type=int, default=200, help="jobs in the compared sweep")
    parser.add_argument("--runs", type=int, default=5, help="warm page loads per figure")
    args = parser.parse_args()
    name = create_database("hq_bench_dash")
    db_url = pg_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        with tempfile.TemporaryDirectory(prefix="hq-bench-dash-") as tmp:
            run(Path(tmp), db_url, args)
    finally:
        stop_all()
        drop_database(name)


def run(tmp: Path, db_url: str, args: argparse.Namespace) -> None:
    api_port, dash_port = free_port(), free_port()
    api, dash = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    env = {
        **os.environ,
        "HQ_HOME": str(tmp),
        "HQ_DATABASE_URL": db_url,
        "HQ_PORT": str(api_port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
        "HQ_URL": api,
        "HQ_DASH_PORT": str(dash_port),
        "HQ_DASH_SECRET_KEY": secrets.token_hex(32),
        "HQ_DASH_USERS": "bench:bench-pw:admin",
    }
    start([sys.executable, "-m", "hq", "server"], env, tmp / "server.log", f"{api}/api/v1/health")
    with HQClient(api, ADMIN_TOKEN) as client:
        client.publish_script_version(
            name=SCRIPT, image=f"hq/{SCRIPT}:latest", digest=DIGEST, manifest=MANIFEST
        )
    start([sys.executable, "-m", "hq", "dash"], env, tmp / "dash.log", f"{dash}/login")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    small_sweep, big_sweep = str(uuid.uuid4()), str(uuid.uuid4())
    insert_jobs(db_url, job_rows(90, start=t0))
    insert_jobs(db_url, job_rows(10, start=t0, sweep_id=small_sweep), sweep_row(small_sweep, 10))
    results: dict[str, tuple[float, float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{dash}/login")
        page.fill("#login-username", "bench")
        page.fill("#login-password", "bench-pw")
        page.click("#login-submit")
        page.wait_for_url(f"{dash}/jobs")
        results["first rows, 100 jobs"] = measure(page, time_first_rows, args.runs, dash)
        results["compare, 10 jobs"] = measure(page, time_compare, args.runs, dash, small_sweep, 10)
        more = args.jobs - 100 - args.sweep
        seconds = insert_jobs(db_url, job_rows(more, start=t0 + timedelta(days=1)))
        seconds += insert_jobs(
            db_url,
            job_rows(args.sweep, start=t0 + timedelta(days=30), sweep_id=big_sweep),
            sweep_row(big_sweep, args.sweep),
        )
        print(
            f"inserted {more + args.sweep} jobs with SQL in {seconds:.1f} s "
            f"({args.jobs} in the database)"
        )
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("ANALYZE jobs")
        results[f"first rows, {args.jobs} jobs"] = measure(page, time_first_rows, args.runs, dash)
        results[f"scroll to row {SCROLL_ROW:,}"] = measure(page, time_scroll, args.runs, dash)
        results[f"compare, {args.sweep} jobs"] = measure(
            page, time_compare, args.runs, dash, big_sweep, args.sweep
        )
        browser.close()
    report(results, args)


def report(results: dict[str, tuple[float, float]], args: argparse.Namespace) -> None:
    """One line per figure; the two budgeted ones with their ratio to the small baseline."""
    budgets = {
        f"first rows, {args.jobs} jobs": ("first rows, 100 jobs", FIRST_ROWS_BUDGET_S),
        f"compare, {args.sweep} jobs": ("compare, 10 jobs", COMPARE_BUDGET_S),
    }
    baselines = {base for base, _ in budgets.values()}
    print(f"\n{'measure':<28}{'cold s':>9}{'warm s':>9}{'vs baseline':>13}{'budget':>9}")
    for label, (cold, warm) in results.items():
        line = f"{label:<28}{cold:>9.3f}{warm:>9.3f}"
        if label in budgets:
            base, budget = budgets[label]
            verdict = "ok" if warm <= budget else "OVER"
            line += f"{warm / results[base][1]:>12.2f}x{budget:>8.1f}s {verdict}"
        elif label in baselines:
            line += f"{'(baseline)':>13}"
        print(line)


if __name__ == "__main__":
    main()
