"""Peak memory of the API server for one request with a huge number of periods, bounded.

``GET /api/share-of-voice?since=0001-01-01&interval=hour`` once grew the server
to 19.6 GB until the kernel killed it. This starts ``listener serve`` for a
project (default: the demo, built with ``listener demo`` if missing) under
``prlimit --as`` (an address-space cap, 3 GB by default) so that a run of code
without the period cap fails with MemoryError instead of taking the machine
down, sends each request once with a timeout, and prints the status, the
time, the first words of the answer and the server's peak resident memory
(``VmHWM``) after each request.

    python bench/period_memory.py --home /tmp/bench-demo
    PYTHONPATH=/path/to/old/checkout python bench/period_memory.py ...   # "before"

The embedded engine is started by this script (outside the cap) and shared
with the server, so the cap applies to the server alone.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from listener.config import load_project
from listener.store.engine import EmbeddedEngine, free_port

REQUESTS = [
    ("/api/share-of-voice", {"since": "0001-01-01", "interval": "hour"}),
    ("/api/sentiment", {"since": "2000-01-01", "interval": "hour"}),
    ("/api/spikes", {"since": "2000-01-01", "interval": "hour"}),
    ("/api/share-of-voice", {"since": "2000-01-01", "interval": "week"}),
]


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/listener-bench-demo"))
    parser.add_argument("--cap-gb", type=float, default=3.0, help="address-space cap (GB)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per request")
    args = parser.parse_args()
    config = args.home.resolve() / "listener.toml"
    if not config.exists():
        subprocess.run(
            [sys.executable, "-m", "listener.cli", "demo", "--home", str(args.home)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    project = load_project(config)
    import listener

    print(f"listener from {Path(listener.__file__).parent}; cap {args.cap_gb:g} GB (prlimit --as)")
    with EmbeddedEngine(project.home / "engine"):
        port = free_port()
        cap = int(args.cap_gb * 1024**3)
        command = [sys.executable, "-m", "listener.cli", "serve", "-c", str(config)]
        server = subprocess.Popen(
            ["prlimit", f"--as={cap}", *command, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the server exited with code {server.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/api/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start within 120 s")
                time.sleep(0.2)
            print(f"server idle: peak RSS {_peak_mb(server.pid):.0f} MB")
            for path, params in REQUESTS:
                query = "&".join(f"{k}={v}" for k, v in params.items())
                started = time.perf_counter()
                try:
                    response = httpx.get(f"{url}{path}", params=params, timeout=args.timeout)
                    outcome = f"{response.status_code} {response.text[:90]!r}"
                except httpx.HTTPError as error:
                    outcome = f"no answer ({type(error).__name__})"
                elapsed = time.perf_counter() - started
                alive = server.poll() is None
                peak = f"{_peak_mb(server.pid):.0f} MB" if alive else "server died"
                print(f"GET {path}?{query}: {elapsed:.1f} s, {outcome}, peak RSS {peak}")
                if not alive:
                    break
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
