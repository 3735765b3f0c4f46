"""HTTP benchmark: Tutela's prompt check against a bare FastAPI endpoint, same run, same way.

Measures requests per second and p50/p99 latency over loopback for

* ``POST /v1/prompts/check`` on ``tutela serve`` (1 worker, embedded SQLite), and on
  ``tutela serve --workers 2`` with PostgreSQL (a throw-away server from tests/pg.py);
* the bare FastAPI endpoint of ``bare_app.py`` served by uvicorn with the same worker count,
  the same event loop and HTTP parser (a sync handler as Tutela's, and an async one);

and prints Tutela's throughput as a ratio to each baseline (target: >= 0.5).

Load comes from ``wrk`` (Debian package ``wrk``) when installed, else from a small asyncio
client in a separate process. Servers and client are pinned with ``taskset`` (default: all
on CPU 1, so the benchmark leaves the other core alone; the ratios are what to compare).
Tutela runs with its default settings except the per-key rate limit (off, or every request
after the first minute's allowance would be a 429).

    .venv/bin/python benchmarks/http_bench.py [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tutela import PromptCheck

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
PROMPTS = [
    "a watercolour of a lighthouse at dawn",
    "a child at a birthday party with balloons",
    "portrait of an old fisherman, oil painting",
    "naked child",  # a short filter test string: the block path is measured too
    "a cat sleeping on a windowsill in the rain",
]
ACCOUNTS = 200


def check_batch(i: int, size: int = 16) -> list[PromptCheck]:
    """The ``i``-th batch of ``size`` prompt checks of this workload (``PromptCheck``s, the
    prompts in turn over the accounts), as the service's checking thread runs them."""
    from tutela import PromptCheck

    return [PromptCheck(PROMPTS[j % len(PROMPTS)], f"acct-{j % ACCOUNTS}")
            for j in range(i * size, (i + 1) * size)]  # fmt: skip


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_s: float = 0.0
    loop_cpu_s: float = 0.0  # the server processes' main threads (the event loops) alone
    db_cpu_s: float | None = None  # PostgreSQL's processes meanwhile (None: no database)
    batch: float | None = None  # Tutela's mean checks per batch meanwhile (/metrics)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per request (all its processes): unlike req/s, barely moved
        by what else the machine runs."""
        return self.server_cpu_s / self.requests * 1e6 if self.requests else 0.0

    @property
    def loop_cpu_us(self) -> float:
        """The event loops' CPU time per request (each server process's main thread): what
        HTTP, routing, validation and the answer cost, apart from the threads that run
        handlers (a bare ``def`` endpoint's thread pool, Tutela's checking thread)."""
        return self.loop_cpu_s / self.requests * 1e6 if self.requests else 0.0

    @property
    def db_cpu_us(self) -> float | None:
        """The database server's CPU time per request: work a change moves from the workers
        to the database (statements parsed again, say) shows here, not in ``cpu_us``."""
        if self.db_cpu_s is None or not self.requests:
            return None
        return self.db_cpu_s / self.requests * 1e6


def median_of(results: list[Result], value: Callable[[Result], float]) -> float:
    """The median of ``value`` over ``results`` (0 for none)."""
    values = sorted(value(r) for r in results)
    return values[len(values) // 2] if values else 0.0


def median_cpu_us(results: list[Result]) -> float:
    return median_of(results, lambda r: r.cpu_us)


def _cpu_of(chosen: Callable[[int, list[str]], bool], *, main_threads: bool = False) -> float:
    """CPU seconds (user + system) used so far by the processes ``chosen(pid, stat fields)``
    picks and by their children that have exited (counted in the parent once it reaped
    them: a PostgreSQL backend or autovacuum worker that ended between two readings must
    not take its CPU time out of the difference), from /proc; 0 where /proc is missing.
    ``main_threads``: only each chosen process's main thread (``task/<pid>/stat``)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if not chosen(int(stat.parent.name), fields):
                continue
            if main_threads:
                main = stat.parent / "task" / stat.parent.name / "stat"
                fields = main.read_text().rsplit(")", 1)[1].split()[:13]  # no children's
        except OSError:
            continue
        total += sum(map(int, fields[11:15]))  # utime, stime, cutime, cstime (ticks)
    return total / os.sysconf("SC_CLK_TCK")


def server_cpu(pgid: int) -> float:
    """CPU seconds used so far by the processes of process group ``pgid`` (a server and
    its workers)."""
    return _cpu_of(lambda _pid, fields: int(fields[2]) == pgid)  # fields[2]: the group


def loop_cpu(pgid: int) -> float:
    """CPU seconds used so far by the main threads of process group ``pgid``'s processes:
    each uvicorn worker's event loop (and a supervisor's main thread, which idles)."""
    return _cpu_of(lambda _pid, fields: int(fields[2]) == pgid, main_threads=True)


def database_cpu(data_dir: Path) -> float:
    """CPU seconds used so far by the PostgreSQL server of ``data_dir``: its postmaster
    (``postmaster.pid``) and the processes it started (backends, WAL writer, ...)."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return _cpu_of(lambda pid, fields: postmaster in (pid, int(fields[1])))  # [1]: parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus and shutil.which("taskset") else cmd


def wait_ready(base: str, path: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- load generators -------------------------------------------------------------------------
WRK_SCRIPT = """
local prompts = %(prompts)s
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
request = function()
  n = n + 1
  local body = string.format('{"text": "%%s", "account": "acct-%%d"}',
                             prompts[(n %% #prompts) + 1], n %% %(accounts)d)
  if %(get)s then return wrk.format("GET") end
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "us": %%d, "p50": %%d, "p99": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def run_wrk(url: str, key: str | None, seconds: float, conns: int, cpus: str, tmp: Path) -> dict:
    lua = tmp / "bench.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    prompts = "{" + ", ".join(json.dumps(p) for p in PROMPTS) + "}"
    lua.write_text(WRK_SCRIPT % {"prompts": prompts, "auth": auth, "accounts": ACCOUNTS,
                                 "get": "true" if url.endswith("/healthz") else "false"})
    out = subprocess.run(
        pinned(cpus, ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s",
                      "-s", str(lua), url]),
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    return {
        "requests": data["requests"], "seconds": data["us"] / 1e6,
        "p50_ms": data["p50"] / 1000, "p99_ms": data["p99"] / 1000, "errors": data["errors"],
    }


async def _py_load(host: str, port: int, path: str, key: str | None, seconds: float,
                   conns: int) -> dict:
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def one(c: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        n = c
        while time.perf_counter() < end:
            n += conns
            get = path.endswith("/healthz")
            body = "" if get else json.dumps(
                {"text": PROMPTS[n % len(PROMPTS)], "account": f"acct-{n % 200}"})
            head = (f"{'GET' if get else 'POST'} {path} HTTP/1.1\r\nHost: {host}\r\n"
                    "Content-Type: application/json\r\n"
                    + (f"Authorization: Bearer {key}\r\n" if key else "")
                    + f"Content-Length: {len(body)}\r\n\r\n")
            t = time.perf_counter()
            writer.write(head.encode() + body.encode())
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            if b" 200 " not in status:
                errors += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(conns)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"requests": len(latencies), "seconds": elapsed, "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "errors": errors}


def run_load(base: str, path: str, key: str | None, seconds: float, conns: int, cpus: str,
             tmp: Path) -> dict:
    if shutil.which("wrk"):
        return run_wrk(base + path, key, seconds, conns, cpus, tmp)
    port = int(base.rsplit(":", 1)[1])
    code = (f"import asyncio, json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import http_bench as b; print(json.dumps(asyncio.run(b._py_load("
            f"'127.0.0.1', {port}, {path!r}, {key!r}, {seconds}, {conns}))))")
    out = subprocess.run(pinned(cpus, [sys.executable, "-c", code]), capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- servers ---------------------------------------------------------------------------------
def start_bare(workers: int, cpus: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = tmp / f"bare-{port}.log"
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent),
           "bare_app:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
           "--log-level", "warning", "--no-server-header", "--workers", str(workers)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned(cpus, cmd), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, "/healthz", proc, log)
    return proc, base


def _tutela_data(tmp: Path, env: dict[str, str]) -> tuple[Path, str]:
    """A fresh data directory, migrated, with one ``check`` key (returned)."""
    data = Path(tempfile.mkdtemp(prefix="tutela-bench-", dir=tmp))
    tutela = str(Path(sys.executable).with_name("tutela"))
    subprocess.run([tutela, "--data-dir", str(data), "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    created = subprocess.run(
        [tutela, "--data-dir", str(data), "keys", "create", "--scope", "check", "--json"],
        env=env, check=True, capture_output=True, text=True)
    return data, json.loads(created.stdout)["key"]


def _tutela_env(env_extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "TUTELA_RATE_LIMIT_PER_MINUTE": "0", **env_extra}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def start_tutela(workers: int, cpus: str, tmp: Path, env_extra: dict[str, str]
                 ) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = _tutela_env(env_extra)
    data, key = _tutela_data(tmp, env)
    tutela = str(Path(sys.executable).with_name("tutela"))
    log = tmp / f"tutela-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            pinned(cpus, [tutela, "--data-dir", str(data), "serve", "--port", str(port),
                          "--workers", str(workers)]),
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, "/readyz", proc, log)
    return proc, base, key


def start_stubbed(cpus: str, tmp: Path, env_extra: dict[str, str]
                  ) -> tuple[subprocess.Popen[bytes], str, str]:
    """Tutela's real app (one worker) whose check is stubbed: see :func:`serve_stubbed`."""
    port = free_port()
    env = _tutela_env(env_extra)
    data, key = _tutela_data(tmp, env)
    log = tmp / f"stubbed-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            pinned(cpus, [sys.executable, __file__, "--serve-stubbed", str(data),
                          "--port", str(port)]),
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, "/readyz", proc, log)
    return proc, base, key


def serve_stubbed(data_dir: Path, port: int) -> None:
    """BENCHMARK INSTRUMENT, never product code: the service layer alone on the POST path.

    Serves Tutela's real app (``create_app``, with its middleware, key check, rate limiter,
    body validation, decision rendering, metrics and access log, on uvicorn with the options
    of ``tutela serve``) around a real Guard whose ``check_prompt`` and ``check_prompts``
    (the batch the service's checking thread runs) are replaced, on this instance only, by
    functions returning one of a few decisions built beforehand by the real check. What it
    measures is everything a request pays besides the check itself (its transaction too).
    """
    import uvicorn

    from tutela.api.app import create_app
    from tutela.cli.serve import uvicorn_options
    from tutela.decision import Decision
    from tutela.guard import Guard

    guard = Guard.open(data_dir=data_dir, port=port)
    fixed = {text: guard.check_prompt(text, account="acct-0") for text in PROMPTS}
    fallback = fixed[PROMPTS[0]]

    def stubbed_check_prompt(text: str, account: str | None = None, *,
                             locale: str | None = None, **_: object) -> Decision:
        return fixed.get(text, fallback)

    def stubbed_check_prompts(checks: Sequence[PromptCheck]) -> list[Decision | Exception]:
        return [fixed.get(c.text, fallback) for c in checks]

    guard.check_prompt = stubbed_check_prompt  # type: ignore[method-assign]
    guard.check_prompts = stubbed_check_prompts  # type: ignore[method-assign]
    app = create_app(guard, warm_models=True)  # as ``tutela serve`` builds it
    uvicorn.run(app, **uvicorn_options(guard.settings))


def measure(name: str, base: str, path: str, key: str | None, pgid: int,
            args: argparse.Namespace, tmp: Path, db_dir: Path | None = None) -> Result:
    run_load(base, path, key, args.warmup, args.connections, args.client_cpus, tmp)
    before = batch_totals(base) if key else None  # Tutela's endpoints (a key) only
    cpu, loops = server_cpu(pgid), loop_cpu(pgid)
    db = database_cpu(db_dir) if db_dir else 0.0
    r = run_load(base, path, key, args.duration, args.connections, args.client_cpus, tmp)
    result = Result(name, r["requests"], r["seconds"], r["p50_ms"], r["p99_ms"], r["errors"],
                    server_cpu(pgid) - cpu, loop_cpu(pgid) - loops,
                    database_cpu(db_dir) - db if db_dir else None)
    after = batch_totals(base) if before is not None else None
    if before is not None and after is not None and after[1] > before[1]:  # checks / batches
        result.batch = (after[0] - before[0]) / (after[1] - before[1])
    print(f"  {name:<34} {result.rps:9.0f} req/s   p50 {result.p50_ms:7.2f} ms   "
          f"p99 {result.p99_ms:7.2f} ms   server CPU {result.cpu_us:6.0f} us/req   "
          f"{_extra_columns(result)}errors {result.errors}", flush=True)
    return result


def _extra_columns(result: Result) -> str:
    """The event loops' share of the server's CPU, and the columns only some runs have:
    the database's CPU, Tutela's mean batch."""
    db = result.db_cpu_us
    columns = f"(event loops {result.loop_cpu_us:4.0f})   "
    columns += "" if db is None else f"database CPU {db:5.0f} us/req   "
    if result.batch is not None:
        columns += f"batches of {result.batch:4.1f}   "
    return columns


def batch_totals(base: str) -> tuple[float, float] | None:
    """Checks and batches decided so far by a Tutela server's checking threads (the sum and
    count of its ``tutela_check_batch_size`` histogram, over every worker), or None where
    the server has no such metric (a bare endpoint, a stubbed check)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(base + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "tutela_check_batch_size":
            found = {s.name: s.value for s in family.samples}
            return found.get(family.name + "_sum", 0.0), found.get(family.name + "_count", 0.0)
    return None


def scenario(label: str, workers: int, args: argparse.Namespace, tmp: Path,
             env_extra: dict[str, str], db_dir: Path | None = None) -> dict[str, Result]:
    """Both servers up at once; measurements alternate between them ``--repeat`` times and
    the median run of each is kept, so a change in the machine's load hits both alike."""
    print(f"{label} ({workers} worker{'s' if workers > 1 else ''})", flush=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        proc, base = start_bare(workers, args.server_cpus, tmp)
        procs.append(proc)
        tproc, tbase, key = start_tutela(workers, args.server_cpus, tmp, env_extra)
        procs.append(tproc)
        stubbed = workers == 1  # the service layer is per worker: one worker shows it
        if stubbed:
            sproc, sbase, skey = start_stubbed(args.server_cpus, tmp, env_extra)
            procs.append(sproc)
    except BaseException:
        for p in procs:
            stop(p)
        raise
    plan = [
        ("bare_sync", "bare FastAPI (def handler)", base, "/v1/prompts/check", None, proc),
        ("bare_async", "bare FastAPI (async handler)", base, "/async/prompts/check", None,
         proc),
        ("tutela", "tutela POST /v1/prompts/check", tbase, "/v1/prompts/check", key, tproc),
        # the real app with its check stubbed (serve_stubbed): the POST path's service layer
        *([("stubbed", "service layer only (POST, stub)", sbase, "/v1/prompts/check", skey,
            sproc)] if stubbed else []),
        # the same middleware (request id, body limit, metrics, JSON access log), no check:
        # what the service layer itself costs over bare FastAPI
        ("bare_healthz", "bare FastAPI GET /healthz", base, "/healthz", None, proc),
        ("tutela_healthz", "tutela GET /healthz", tbase, "/healthz", None, tproc),
    ]
    runs: dict[str, list[Result]] = {name: [] for name, *_ in plan}
    try:
        for _ in range(args.repeat):
            for name, title, url, path, auth, server in plan:
                runs[name].append(measure(title, url, path, auth, server.pid, args, tmp,
                                          db_dir))
    finally:
        for p in procs:
            stop(p)
    out = {name: sorted(rs, key=lambda r: r.rps)[len(rs) // 2] for name, rs in runs.items()}
    if args.repeat > 1:
        print("  medians:")
        for name, title, *_ in plan:
            r = out[name]
            print(f"  {title:<34} {r.rps:9.0f} req/s   p50 {r.p50_ms:7.2f} ms   "
                  f"p99 {r.p99_ms:7.2f} ms   server CPU {r.cpu_us:6.0f} us/req   "
                  f"{_extra_columns(r)}".rstrip())

    def ratio(name: str, base_name: str) -> str:
        """req/s ratio: the median over rounds of each round's ratio (both measured minutes
        apart at most, so a change in the machine's load cancels better than in a ratio
        of medians), and the ratio of the servers' CPU per request (base / name)."""
        per_round = sorted(a.rps / b.rps for a, b in zip(runs[name], runs[base_name],
                                                         strict=True) if b.rps)
        rps = per_round[len(per_round) // 2] if per_round else 0.0
        cpu_base, cpu_name = median_cpu_us(runs[base_name]), median_cpu_us(runs[name])
        cpu = cpu_base / cpu_name if cpu_name else 0.0
        return f"{rps:.2f}   (CPU per request: {cpu:.2f})"

    for base_name in ("bare_sync", "bare_async"):
        print(f"  ratio tutela / {base_name:<27} = {ratio('tutela', base_name)}"
              "   target >= 0.5")
    if "stubbed" in out:
        for base_name in ("bare_sync", "bare_async"):
            print(f"  ratio service layer only (POST) / {base_name:<10} = "
                  f"{ratio('stubbed', base_name)}")
    print(f"  ratio of /healthz (service layer only)     = "
          f"{ratio('tutela_healthz', 'bare_healthz')}")
    # where Tutela's CPU per request goes: its event loops (HTTP, key, validation, answer)
    # against the bare server's whole cost, and the rest (the checking thread's checks)
    loops = median_of(runs["tutela"], lambda r: r.loop_cpu_us)
    rest = median_of(runs["tutela"], lambda r: r.cpu_us - r.loop_cpu_us)
    print(f"  tutela CPU per request: event loops {loops:.0f} us + other threads (the checks) "
          f"{rest:.0f} us; bare def, whole server: {median_cpu_us(runs['bare_sync']):.0f} us")
    return out


def breakdown(samples: int = 300, rounds: int = 5) -> None:
    """Single-thread CPU cost per prompt check of each stage, in this process (no HTTP).

    Shows where a request's time goes: the HTTP ratio cannot exceed what the Guard's own
    per-check cost allows. Each figure is the median of ``rounds`` runs of ``samples`` calls
    (CPU time, so other processes on the core do not count, but one run can still be hit by
    a checkpoint or a cache miss the others are not). Recording is shown apart for an allowed
    prompt and for a blocked sexual_minors prompt (which also seals the prompt as evidence),
    with pre-judged decisions under fresh ids, so only :meth:`Guard.record` is timed.
    """
    import dataclasses

    import record_bench  # benchmarks/: the CPU-time yardstick both benchmarks use

    from tutela import Guard
    from tutela.decision import Decision, new_decision_id
    from tutela.store.decisions import decision_row

    allowed_prompt, blocked_prompt = PROMPTS[0], "naked child"
    with tempfile.TemporaryDirectory(prefix="tutela-breakdown-") as tmp:
        guard = Guard.open(data_dir=tmp)
        for i in range(30):
            guard.check_prompt(PROMPTS[i % len(PROMPTS)], account=f"acct-{i}")

        def cpu_us(fn) -> float:  # type: ignore[no-untyped-def]
            return record_bench.cpu_us(fn, samples, rounds)

        def recorded(template: Decision, prompt: str) -> float:
            fresh = iter([dataclasses.replace(template, id=new_decision_id())
                          for _ in range(samples * rounds)])
            return cpu_us(lambda i: guard.record(next(fresh), prompt=prompt))

        read = cpu_us(lambda i: guard.read_prompt(PROMPTS[i % len(PROMPTS)]))
        full = cpu_us(lambda i: guard.check_prompt(PROMPTS[i % len(PROMPTS)],
                                                   account=f"acct-{i % ACCOUNTS}"))
        # as the service runs them: batches of 16 in one transaction (api/batcher.py)
        batch = 16
        batched = cpu_us(lambda i: guard.check_prompts(check_batch(i, batch))) / batch
        allowed = guard.check_prompt(allowed_prompt)
        blocked = guard.check_prompt(blocked_prompt)
        assert allowed.allowed and blocked.blocked and blocked.categories.get("sexual_minors")
        check_allowed = cpu_us(lambda i: guard.check_prompt(allowed_prompt))
        check_blocked = cpu_us(lambda i: guard.check_prompt(blocked_prompt))
        record_allowed = recorded(allowed, allowed_prompt)
        record_blocked = recorded(blocked, blocked_prompt)
        insert = cpu_us(lambda i: guard.store.write(
            lambda s: guard.store.decisions.add(
                s, decision_row(type(allowed)(allowed.verdict, {}, [], [], account="a"),
                                prompt=PROMPTS[0]))))
        callbacks = list(guard._decision_callbacks)
        guard._decision_callbacks.clear()
        bare = cpu_us(lambda i: guard.check_prompt(PROMPTS[i % len(PROMPTS)],
                                                   account=f"acct-{i % ACCOUNTS}"))
        guard._decision_callbacks.extend(callbacks)
        assert guard.audit.evidence.log.verify().ok
    print(f"in-process CPU per prompt check (single thread, SQLite; median of {rounds} x "
          f"{samples}):")
    print(f"  prompt reader                      {read:8.0f} us")
    print(f"  decision insert + commit (store)   {insert:8.0f} us")
    print(f"  check_prompt without on_decision   {bare:8.0f} us  "
          "(reader, accounts, policy, insert)")
    print(f"  check_prompt, everything           {full:8.0f} us  (+ {len(callbacks)} on_decision "
          f"callback(s): {', '.join(type(c).__name__ for c in callbacks)})")
    print(f"  the same in batches of 16          {batched:8.0f} us  (check_prompts: one "
          "transaction, one commit, as the service runs them)")
    print(f"  Guard.record, allowed              {record_allowed:8.0f} us  "
          "(decision row, audit leaf, commit)")
    print(f"  Guard.record, blocked sex. minors  {record_blocked:8.0f} us  "
          "(+ prompt sealed in the vault, its custody leaf)")
    print(f"  check_prompt, allowed, no account  {check_allowed:8.0f} us")
    print(f"  check_prompt, blocked, no account  {check_blocked:8.0f} us  (sexual_minors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternating rounds; the median of each is reported")
    parser.add_argument("--server-cpus", default="1", help="taskset CPU list for servers")
    parser.add_argument("--client-cpus", default="1", help="taskset CPU list for the client")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--breakdown", action="store_true",
                        help="only print the in-process cost of each stage of a check")
    parser.add_argument("--serve-stubbed", type=Path, metavar="DATA_DIR",
                        help=argparse.SUPPRESS)  # internal: the stubbed server's process
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stubbed:
        serve_stubbed(args.serve_stubbed, args.port)
        return
    if args.breakdown:
        breakdown()
        return
    print(f"client: {'wrk' if shutil.which('wrk') else 'python asyncio'}; servers on CPU "
          f"{args.server_cpus}, client on CPU {args.client_cpus}; {args.connections} "
          f"connections, {args.duration:.0f} s per run")
    results: dict[str, dict[str, Result]] = {}
    with tempfile.TemporaryDirectory(prefix="tutela-http-bench-") as tmp_str:
        tmp = Path(tmp_str)
        if not args.skip_sqlite:
            results["sqlite_1_worker"] = scenario("SQLite (embedded default)", 1, args, tmp,
                                                  {})
        if not args.skip_postgres:
            from pg import TempPostgres, find_pg_bin

            bin_dir = find_pg_bin()
            if bin_dir is None:
                print("PostgreSQL binaries not found: skipping the 2-worker PostgreSQL run")
            else:
                pg = TempPostgres(bin_dir, fsync=True).start()
                try:
                    url = pg.create_database("bench")
                    results["postgres_2_workers"] = scenario(
                        "PostgreSQL", 2, args, tmp, {"TUTELA_DATABASE_URL": url}, pg.data)
                finally:
                    pg.stop()
    if args.json:
        args.json.write_text(json.dumps(
            {k: {n: {**r.__dict__, "rps": r.rps} for n, r in v.items()}
             for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
