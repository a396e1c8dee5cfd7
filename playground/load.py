"""Load test of the playground server: many clients typing at once, on this machine only.

    python -m playground.load [--checkpoint runs/toy/best.pt] [--clients 20] [--seconds 30]

Starts ``play.py`` in its own process on a free port of 127.0.0.1, then runs three loads, each bounded in time and
in requests, on a 64-token text: one client asking for its attention over and over (the latency one learner sees);
``--clients`` clients doing the same at once, each sending its next request as soon as the last is answered (a
stress test: no person types that fast); and ``--clients`` clients typing, each sending what one keystroke on the
page sends (/api/page) and pausing ``--pause`` seconds after each answer. Prints requests, errors and latency
percentiles. Traffic goes to the loopback address only.
"""
import argparse
import http.client
import json
import re
import select
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "The dog chased the cat. Who chased? the dog. Who was chased? the cat."
MAX_REQUESTS_PER_CLIENT = 100_000


def start_server(*args: str, env=None) -> tuple[subprocess.Popen, str]:
    """``play.py --port 0 ARGS`` as a user starts it; returns the process and the URL it printed."""
    process = subprocess.Popen([sys.executable, "play.py", "--port", "0", *map(str, args)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 120)
    line = process.stdout.readline() if ready else ""
    found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
    if not found:
        process.kill()
        raise RuntimeError(f"play.py did not start: {line!r} {process.stderr.read().strip()}")
    return process, found.group(1)


def client(port: int, bodies: dict, deadline: float, results: list, pause: float = 0.0) -> None:
    """Posts the bodies in turn on one kept-alive connection until the deadline, waiting ``pause`` seconds after
    each answer; records (path, seconds, ok)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        for path, body in bodies.items():
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            results.append((path, time.perf_counter() - started, ok))
            time.sleep(pause)


def run_clients(port: int, bodies: dict, clients: int, seconds: float, pause: float = 0.0) -> dict:
    results: list = []
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(port, bodies, deadline, results, pause)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = {}
    for path in bodies:
        times = sorted(t for p, t, ok in results if p == path)
        errors = sum(1 for p, _, ok in results if p == path and not ok)
        if not times:
            continue
        summary[path] = {"requests": len(times), "errors": errors, "per_second": round(len(times) / seconds, 1),
                         "p50_ms": round(1000 * statistics.median(times), 1),
                         "p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 1)}
    return summary


def text_of(port: int, tokens: int) -> str:
    """``TEXT`` cut to ``tokens`` tokens of the served model (or its whole context, if shorter)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/api/model")
    context = json.loads(connection.getresponse().read())["model"]["block_size"]
    connection.request("POST", "/api/tokens", json.dumps({"text": TEXT[: min(tokens, context)]}),
                       {"Content-Type": "application/json"})
    answer = json.loads(connection.getresponse().read())
    return "".join(t["text"] for t in answer["tokens"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="checkpoint to serve (default: the toy model)")
    p.add_argument("--clients", type=int, default=20, help="clients at once (default 20)")
    p.add_argument("--seconds", type=float, default=30, help="length of the many-clients run (default 30)")
    p.add_argument("--tokens", type=int, default=64, help="length of the text in tokens (default 64)")
    p.add_argument("--pause", type=float, default=0.25, help="seconds a typing client waits after each answer "
                   "before its next keystroke (default 0.25: the page waits 0.2 s after the last key)")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 200 and 1 <= args.seconds <= 600 and 1 <= args.tokens <= 10_000
            and 0 <= args.pause <= 10):
        print("error: --clients must be in 1..200, --seconds in 1..600, --tokens in 1..10000, --pause in 0..10",
              file=sys.stderr)
        return 2
    server, url = start_server(*(["--checkpoint", args.checkpoint] if args.checkpoint else []))
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        text = text_of(port, args.tokens)
        attention = {"/api/attention": json.dumps({"text": text})}
        keystroke = {"/api/page": json.dumps({"text": text})}
        print(f"text: {text!r} ({len(text)} characters)", flush=True)
        runs = {"1 client, attention": run_clients(port, attention, 1, min(10.0, args.seconds)),
                f"{args.clients} clients, attention": run_clients(port, attention, args.clients, args.seconds),
                f"{args.clients} typing, page": run_clients(port, keystroke, args.clients, args.seconds, args.pause)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{'run':<24} {'endpoint':<16} {'requests':>9} {'errors':>7} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, summary in runs.items():
        for path, s in summary.items():
            print(f"{name:<24} {path:<16} {s['requests']:>9} {s['errors']:>7} {s['per_second']:>7} "
                  f"{s['p50_ms']:>8} {s['p99_ms']:>8}")
    return 1 if any(s["errors"] for summary in runs.values() for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
