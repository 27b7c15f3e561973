"""The dashboard under load: concurrent clients on the compare view, a tenth of them sending bad values.

Builds a small synthetic study (two variants of 100 examples, the MiniLM-shaped stores of
benchmarks/dashboard.py), serves it with waitress in a subprocess on 127.0.0.1, and has 20
client threads post to the compare view's callback endpoint as the browser does. One request
in ten carries a bad value (an unknown variant, example or kind; a layer or head out of range;
a non-numeric layer; None; a list; a dict), in turn. Latency is measured by the clients; the
server adds how long the app took (a Server-Timing header) and its log is searched for
tracebacks. Then the bad values are sent once more, one at a time, to an idle server.
Targets: no 5xx; p95 <= 500 ms; a bad value answered in <= 50 ms server-side.

    python benchmarks/dashboard_load.py [--requests 1000] [--clients 20] [--threads 8]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

# As in benchmarks/dashboard.py: import the `dashboard` package, not that file, then load the
# file under another name for its synthetic stores, and put this folder back for `common`.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if p != str(HERE)]
from attention_lab.datasets.store import AttentionStore  # noqa: E402
from dashboard.__main__ import serve  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.data import InMemoryStudy  # noqa: E402
from dashboard.views import Selection  # noqa: E402
from tests.support.endpoint import (  # noqa: E402
    ENDPOINT,
    callback_body,
    control_inputs,
    wait_until_answers,
)

_spec = importlib.util.spec_from_file_location("dashboard_benchmark", HERE / "dashboard.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
from common import report  # noqa: E402

EXAMPLES = 100
OUTPUT = "compare-graph.figure"
BAD_VALUES = [  # (control, value), one of each kind of bad value, sent in turn
    ("variant-a", "nope"),
    ("example", "missing"),
    ("kind", "sideways"),
    ("layer", 99),
    ("head", "99"),
    ("layer", "abc"),
    ("variant-b", None),
    ("example", ["ex0"]),
    ("layer", {"layer": 1}),
]


def study(work: Path, build: bool) -> InMemoryStudy:
    """Two variants' synthetic stores in ``work`` (written when ``build``) and their probe set."""
    paths = {v: work / f"{v}.zarr.zip" for v in ("a", "b")}
    stores = {
        v: bench.synthetic_store(path, v, EXAMPLES, seed) if build else AttentionStore(str(path))
        for (v, path), seed in zip(paths.items(), (1, 2), strict=True)
    }
    ids = [f"ex{i}" for i in range(EXAMPLES)]
    probes = pd.DataFrame({"id": ids, "text": "", "label": 0, "label_name": "x", "source": "test"})
    return InMemoryStudy(stores, probes, reference="a")


def server_timing(wsgi_app):
    """Add how long the app took to each response: ``Server-Timing: app;dur=<ms>``."""

    def timed(environ, start_response):
        start = time.perf_counter()

        def start_timed(status, headers, exc_info=None):
            headers.append(("Server-Timing", f"app;dur={(time.perf_counter() - start) * 1e3:.3f}"))
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start_timed)

    return timed


def run_server(work: Path, port: int, threads: int) -> None:
    app = create_app(data=study(work, build=False))
    app.server.wsgi_app = server_timing(app.server.wsgi_app)
    serve(app, "127.0.0.1", port, "waitress", threads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(work: Path, threads: int, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(work), "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--threads", str(threads)], stdout=log, stderr=log, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    if wait_until_answers(url + "/", proc, 120):
        return proc, url
    stop_server(proc)
    raise RuntimeError(f"the dashboard did not answer on {url}; see its log")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()  # by its pid
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bodies(app, n: int, bad_every: int = 10) -> list[tuple[bool, dict]]:
    """``n`` request bodies for the compare view: random good selections, every
    ``bad_every``-th one with the next bad value instead."""
    rnd, out = random.Random(1), []
    for i in range(n):
        selection = Selection(
            a="a",
            b="b",
            example=f"ex{rnd.randrange(EXAMPLES)}",
            kind="encoder",
            layer=rnd.randrange(bench.LAYERS),
            head=rnd.choice(["mean", *map(str, range(bench.HEADS))]),
        )
        values = control_inputs(selection)
        bad = i % bad_every == bad_every - 1
        if bad:
            control, value = BAD_VALUES[(i // bad_every) % len(BAD_VALUES)]
            values[f"{control}.value"] = value
        out.append((bad, callback_body(app, OUTPUT, values)))
    return out


def post(url: str, bad: bool, body: dict) -> dict:
    """One request: its status, client and server milliseconds, and whether it was answered
    as it should be (a bad value with a message, a good one with the three heatmaps)."""
    request = urllib.request.Request(
        url + ENDPOINT, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, timing, payload = answer.status, answer.headers["Server-Timing"], answer.read()
    except urllib.error.HTTPError as error:
        status, timing, payload = error.code, error.headers["Server-Timing"], b""
    ms = (time.perf_counter() - start) * 1e3
    figure = json.loads(payload)["response"]["compare-graph"]["figure"] if status == 200 else {}
    shown = figure.get("layout", {}).get("annotations") if bad else len(figure.get("data", [])) == 3
    server_ms = float(timing.split("dur=")[1]) if timing else float("nan")
    return {"bad": bad, "status": status, "ms": ms, "server_ms": server_ms, "right": bool(shown)}


def percentiles(results: list[dict]) -> dict:
    client = [r["ms"] for r in results]
    server = [r["server_ms"] for r in results]
    return {
        "requests": len(results),
        "p50_ms": float(np.percentile(client, 50)),
        "p95_ms": float(np.percentile(client, 95)),
        "server_p50_ms": float(np.nanpercentile(server, 50)),
        "server_p95_ms": float(np.nanpercentile(server, 95)),
    }


def measure(url: str, app, requests: int, clients: int) -> dict:
    for bad, body in bodies(app, 20):  # warm the imports and the stores
        post(url, bad, body)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda job: post(url, *job), bodies(app, requests)))
    seconds = time.perf_counter() - start
    idle = [post(url, True, body) for _, body in bodies(app, 5 * len(BAD_VALUES), bad_every=1)]
    return {
        "results": results,
        "seconds": seconds,
        "good": percentiles([r for r in results if not r["bad"]]),
        "bad": percentiles([r for r in results if r["bad"]]),
        "bad_idle": percentiles(idle),
    }


def summary(run: dict, args, tracebacks: int) -> dict:
    results = run["results"]
    everything = percentiles(results)
    errors = sum(r["status"] >= 500 for r in results)
    bad_server_p95 = max(run["bad"]["server_p95_ms"], run["bad_idle"]["server_p95_ms"])
    return {
        "requests": len(results),
        "clients": args.clients,
        "server_threads": args.threads,
        "bad_share": sum(r["bad"] for r in results) / len(results),
        "errors_5xx": errors,
        "other_non_200": sum(r["status"] != 200 and r["status"] < 500 for r in results),
        "wrong_answers": sum(not r["right"] for r in results),
        "tracebacks_logged": tracebacks,
        "requests_per_second": len(results) / run["seconds"],
        **{k: v for k, v in everything.items() if k != "requests"},
        "good": run["good"],
        "bad": run["bad"],
        "bad_idle": run["bad_idle"],
        "targets": {
            "no 5xx": errors == 0,
            "p95<=500ms": everything["p95_ms"] <= 500,
            "bad value server p95<=50ms": bad_server_p95 <= 50,
        },
    }


def table(data: dict) -> list[tuple[str, ...]]:
    def row(name, part, target=""):
        cells = (part["p50_ms"], part["p95_ms"], part["server_p95_ms"])
        return (name, str(part["requests"]), *(f"{x:.1f} ms" for x in cells), target)

    return [
        ("requests", "n", "p50", "p95", "server p95", "target"),
        row("all", data, "p95 <= 500 ms"),
        row("good values", data["good"]),
        row("bad values", data["bad"], "server p95 <= 50 ms"),
        row("bad values, idle server", data["bad_idle"], "server p95 <= 50 ms"),
        ("5xx answers", str(data["errors_5xx"]), "", "", "", "0"),
        ("wrong answers", str(data["wrong_answers"]), "", "", "", "0"),
        ("tracebacks in the log", str(data["tracebacks_logged"]), "", "", "", "0"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the server subprocess
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return run_server(args.serve, args.port, args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-load-"))
    try:
        app = create_app(data=study(work, build=True))  # for the callback map
        with open(work / "server.log", "w") as log:
            proc, url = start_server(work, args.threads, log)
            try:
                run = measure(url, app, args.requests, args.clients)
            finally:
                stop_server(proc)
        tracebacks = (work / "server.log").read_text().count("Traceback")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data = summary(run, args, tracebacks)
    print(
        f"\nDashboard under load: {data['requests']} requests from {args.clients} clients, "
        f"{data['bad_share']:.0%} bad values, waitress with {args.threads} threads, "
        f"{data['requests_per_second']:.0f} requests/s\n"
    )
    report("dashboard_load", table(data), data)


if __name__ == "__main__":
    main()
