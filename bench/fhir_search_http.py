"""Search benchmark through the API: the requests of fhir_search.py, sent over HTTP to a running
`carebridge serve`, as the admin and as the practitioner, interleaved request by request.

    python bench/fhir_search_http.py --backend sqlite [--samples 300]

fhir_search.py times the store's work in process; a client sees more: HTTP, the token check, the
guard, the unit of work and the AuditEvent every request writes in its transaction (ADR 0009).
This benchmark times what a client sees, on the store and fixtures fhir_search.py uses
(`bench/access_population.py`), so its overhead column says what enforcement costs a caller.
Each response's total and ids must be the same in both modes (asserted). The server runs in a
child process on 127.0.0.1 with the bench's token keys; the client keeps one connection.
Prints a table and writes bench/results/fhir_search_http-<backend>.json.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fhir_search import (
    ADMIN,
    PRACTITIONER,
    TARGET_OVERHEAD,
    Request,
    bench_store,
    cases,
    family_names,
)
from harness import DATA, Report, latency_summary

ROOT = Path(__file__).resolve().parent.parent
CARE = str(ROOT / ".venv" / "bin" / "carebridge")


@contextmanager
def server(url: str, port: int) -> Iterator[dict[str, str]]:
    """`carebridge serve` on `port` over the database at `url`; yields its environment."""
    env = dict(os.environ, CAREBRIDGE_DATABASE_URL=url, CAREBRIDGE_TOKEN_KEY_DIR=str(DATA / "keys"))
    command = [CARE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            sys.exit("the server did not start")
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)


def token(env: dict[str, str], origin: str, scope: str, fhir_user: str | None = None) -> str:
    """A token from `carebridge token` for the server at `origin` (its issuer)."""
    command = [CARE, "token", "--base-url", origin, "--scope", scope]
    if fhir_user:
        command += ["--fhir-user", fhir_user]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def get(client: httpx.Client, bearer: str, request: Request) -> tuple[float, Any]:
    path = f"/{request.res_type}/{request.read_id}" if request.read_id else f"/{request.res_type}"
    params = None if request.read_id else request.params
    start = time.perf_counter()
    response = client.get(path, params=params, headers={"Authorization": f"Bearer {bearer}"})
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        sys.exit(f"{path}: {response.status_code} {response.text[:300]}")
    body = response.json()
    if request.read_id:
        return elapsed, (1, (body["id"],))
    ids = tuple(
        e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"
    )
    return elapsed, (body.get("total"), ids)


def run(backend: str, samples: int, seed: int, database: str, port: int) -> None:
    url, engine, people, setup = bench_store(backend, database, samples, seed)
    names = family_names(engine)
    engine.dispose()
    origin = f"http://127.0.0.1:{port}"
    base = f"{origin}/fhir"
    report = Report(
        "fhir_search_http", ["query", "mode", "p50 ms", "p95 ms", "mean ms", "p95 overhead"]
    )
    overheads: dict[str, float] = {}
    with server(url, port) as env, httpx.Client(base_url=base, timeout=60) as client:
        bearers = {
            ADMIN: token(env, origin, "system/*.rs"),
            PRACTITIONER: token(env, origin, "user/*.rs", setup.practitioner),
        }
        rng = random.Random(seed)
        for case in cases(names):
            times: dict[str, list[float]] = {ADMIN: [], PRACTITIONER: []}
            for i in range(samples + 10):  # the first 10 warm the server
                request = case.make(rng, rng.choice(people))
                order = [ADMIN, PRACTITIONER] if i % 2 == 0 else [PRACTITIONER, ADMIN]
                results = {}
                for mode in order:
                    elapsed, results[mode] = get(client, bearers[mode], request)
                    if i >= 10:
                        times[mode].append(elapsed)
                if results[ADMIN] != results[PRACTITIONER]:
                    sys.exit(f"{case.label}: the modes saw different results for {request}")
            admin = latency_summary(times[ADMIN])
            for mode in (ADMIN, PRACTITIONER):
                summary = latency_summary(times[mode])
                ratio = summary["p95_ms"] / admin["p95_ms"] - 1
                if mode != ADMIN:
                    overheads[case.label] = round(ratio, 3)
                report.add(
                    case.label if mode == ADMIN else "",
                    mode,
                    summary["p50_ms"],
                    summary["p95_ms"],
                    summary["mean_ms"],
                    "" if mode == ADMIN else f"{ratio:+.0%}",
                )
    report.meta = {
        "samples": samples,
        "seed": seed,
        "database": database,
        "access": {"target_p95_overhead": TARGET_OVERHEAD, "overheads": overheads},
    }
    worst = max(overheads.values())
    print(f"worst p95 overhead of enforcement through the API: {worst:+.0%}")
    print(f"wrote {report.emit(backend)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", default="carebridge_bench")
    parser.add_argument("--port", type=int, default=8779)
    args = parser.parse_args()
    run(args.backend, args.samples, args.seed, args.database, args.port)


if __name__ == "__main__":
    main()
