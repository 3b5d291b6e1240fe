"""1,000 (or 10,000) export waits in one event loop: MsgHistoryExportTrigger vs a naive sync-client-in-threads
wait.

Each mode runs in its own process (so peak RSS is its own) against its own emulator process (so the
emulator's load does not distort the loop-lag figure). The exports are submitted first, then every wait
starts in the same instant, as a triggerer starts the triggers it was handed together (one task each, with
a yield to the loop between two, as Airflow's ``create_triggers`` does), and the loop is watched by a
ticker task.

The triggers share one export-list poll per connection: its requests are charged to the waits in equal
shares, so "requests per wait" adds up to every request the API served. The trigger class is imported and
the setup's garbage collected before the clock starts (a triggerer imports a class once; the setup is not
the waits' work); everything the waits do, garbage collections included, is measured.

Prints, side by side per mode: wall time to the last event, max event-loop lag (at the start and after
the first poll interval), peak RSS, requests per wait and the peak request rates beside the key's
documented limit, how late each wait saw its export's completion (counted from its wait's start for an
export done before its wait started: submitting 10,000 takes minutes), the load average around the run;
then each target of issue 20 beside its figure, met or not, per mode.

    python benchmarks/triggerer_scale.py [--vendor qlara|8x8] [--waits 1000] [--latency 0.2]
        [--export-delay 30] [--poll 5]

Qlara tracks exports in one account-wide list: the triggers share one list read per round. 8x8 has no
list: each trigger polls its own job, one request per poll, over the connection's one shared client and
connection pool. 8x8 has no completion time to read back; a job's completion is taken as the start of its
submission plus the export delay (the emulator starts the clock on receipt), which can only overstate how
late a wait saw it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect

API_KEY = "bench-key-0123456789"
SUB_ACCOUNT = "bench-sms_01"
DAY = ("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")
TICK = 0.01  # the ticker's sleep: lateness beyond it is loop lag

# Which wait a request belongs to (set in each wait's task; copied into executor calls). Requests of the
# triggers' shared poll run in a context of their own and count as SHARED.
SHARED = "-"
current_wait: contextvars.ContextVar[str] = contextvars.ContextVar("current_wait", default=SHARED)


# ------------------------------------------------------------------------------------------- orchestrator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port, storage_port = free_port(), free_port()
    cmd = [
        sys.executable, "-m", "airflow_provider_msghistory.emulator", "--vendor", args.vendor,
        "--port", str(port), "--api-key", API_KEY, "--latency", str(args.latency),
        "--export-delay", str(args.export_delay), "--rate-limit", "off", "--messages", "1000",
    ]  # fmt: skip
    cmd += (
        ["--storage-port", str(storage_port)] if args.vendor == "qlara" else ["--sub-account-id", SUB_ACCOUNT]
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}" + ("/api" if args.vendor == "qlara" else "")
        except OSError:
            if proc.poll() is not None:
                detail = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"emulator exited: {detail}") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("emulator did not start listening within 20 s")


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    emulator, base_url = start_emulator(args)
    try:
        home = tempfile.mkdtemp(prefix="msghistory-bench-")
        extra = {"vendor": "8x8", "sub_account_id": SUB_ACCOUNT} if args.vendor == "8x8" else {}
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The emulator runs without a rate limit and this measures the triggerer, not the client's
            # pacing under the key's limit: lift the limit the client keeps to.
            "AIRFLOW_CONN_MSGHISTORY_DEFAULT": json.dumps(
                {
                    "conn_type": "msghistory",
                    "host": base_url,
                    "password": API_KEY,
                    # the client's pacing lifted: the emulator runs unlimited; this measures the triggerer
                    "extra": {**extra, "requests_per_minute": 1_000_000, "requests_per_second": 100_000},
                }
            ),
        }
        cmd = [sys.executable, __file__, "--worker", mode, *sys.argv[1:]]
        load_before = os.getloadavg()[0]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.export_delay + 900)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} worker failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        # The machine is shared: the 1-minute load average says how much else ran meanwhile.
        result["load_before"], result["load_after"] = load_before, os.getloadavg()[0]
        return result
    finally:
        emulator.terminate()
        emulator.wait(10)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    from airflow_provider_msghistory.emulator.factory import vendor_spec

    rows = [
        ("waits finished", "finished", "{:.0f}"),
        ("wall time to last event (s)", "wall_to_last_event_s", "{:.1f}"),
        ("max event-loop lag (ms)", "max_loop_lag_ms", "{:.1f}"),
        ("  after the first poll interval (ms)", "steady_loop_lag_ms", "{:.1f}"),
        ("  longest garbage collection (ms)", "gc_max_ms", "{:.1f}"),
        ("  max lag outside collections > 5 ms (ms)", "lag_without_gc_ms", "{:.1f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:.0f}"),
        ("  RSS after imports (MB)", "baseline_rss_mb", "{:.0f}"),
        ("API requests in total", "requests_total", "{:.0f}"),
        ("  of which by the shared poll", "requests_shared", "{:.0f}"),
        ("requests per wait: mean", "requests_mean", "{:.2f}"),
        ("requests per wait: max", "requests_max", "{:.2f}"),
        ("polls needed per wait: mean", "needed_mean", "{:.2f}"),
        ("max extra requests over polls needed", "extra_max", "{:.2f}"),
        ("peak requests in 1 s", "peak_per_second", "{:.0f}"),
        ("peak requests in 60 s", "peak_per_minute", "{:.0f}"),
        ("seen after completion: max (s)", "late_max_s", "{:.2f}"),
        ("seen after completion: mean (s)", "late_mean_s", "{:.2f}"),
        ("load average (1 min) before", "load_before", "{:.2f}"),
        ("load average (1 min) after", "load_after", "{:.2f}"),
    ]
    modes = list(results)
    print(
        f"\n{args.vendor}: {args.waits} waits, latency {args.latency}s, export delay {args.export_delay}s, "
        f"poll interval {args.poll}s, rate limit off, {os.cpu_count()} CPUs\n"
    )
    width = 44
    print(f"{'':{width}}" + "".join(f"{m:>16}" for m in modes))
    for label, key, fmt in rows:
        cells = "".join(
            f"{fmt.format(results[m][key]) if results[m].get(key) is not None else 'n/a':>16}" for m in modes
        )
        print(f"{label:{width}}{cells}")
    # Issue 20: within the poll interval + 2 s on a list vendor, two intervals on a job vendor.
    late_limit = args.poll + 2 if args.vendor == "qlara" else 2 * args.poll
    per_minute, per_second = vendor_spec(args.vendor).rate_limit or (math.inf, math.inf)

    def checks(r: dict[str, Any]) -> list[tuple[str, bool]]:
        """Each target's figure and whether it is met."""
        late = r["late_max_s"]
        rates = f"{r['peak_per_second']:.0f}/s {r['peak_per_minute']:.0f}/min"
        return [
            (
                f"{r['finished']}/{args.waits}, {late:.2f} s" if late is not None else "n/a",
                r["finished"] == args.waits and late is not None and late <= late_limit,
            ),
            (f"{r['max_loop_lag_ms']:.0f} ms", r["max_loop_lag_ms"] < 250),
            (f"{r['steady_loop_lag_ms']:.0f} ms", r["steady_loop_lag_ms"] < 100),
            (f"{r['peak_rss_mb']:.0f} MB", r["peak_rss_mb"] < 300),
            (rates, r["peak_per_second"] <= per_second and r["peak_per_minute"] <= per_minute),
        ]

    targets = [
        f"every wait sees its completion within {late_limit:.1f}s",
        "max loop lag < 250 ms (start)",
        "loop lag after the first interval < 100 ms",
        "peak RSS < 300 MB",
        f"requests within {per_second:.0f}/s and {per_minute:.0f}/min",
    ]
    verdicts = {m: checks(results[m]) for m in modes}
    cell = 30
    print(f"\n{'Targets of issue 20':{width}}" + "".join(f"{m:>{cell}}" for m in modes))
    for i, text in enumerate(targets):
        cells = []
        for m in modes:
            figure, met = verdicts[m][i]
            cells.append(f"{figure + ('  met' if met else '  NOT MET'):>{cell}}")
        print(f"{text:{width}}" + "".join(cells))


# ------------------------------------------------------------------------------------------------ workers


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_requests(counter: Counter[str], times: list[float]) -> None:
    """Count every API request per wait, at the transports both clients send through, and note when."""
    from airflow_provider_msghistory.client.transport.aio import AsyncTransport
    from airflow_provider_msghistory.client.transport.sync import SyncTransport

    for cls in (AsyncTransport, SyncTransport):
        original = cls.send
        if asyncio.iscoroutinefunction(original):

            async def send(self: Any, request: Any, _original: Any = original) -> Any:
                counter[current_wait.get()] += 1
                times.append(time.monotonic())
                return await _original(self, request)

        else:

            def send(self: Any, request: Any, _original: Any = original) -> Any:  # type: ignore[misc]
                counter[current_wait.get()] += 1
                times.append(time.monotonic())
                return _original(self, request)

        cls.send = send  # type: ignore[method-assign]


async def ticker(stop: asyncio.Event, lags: list[tuple[float, float]]) -> None:
    """Record (when, lateness) of a 10 ms sleep, for as long as the waits run."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(TICK)
        lags.append((before, loop.time() - before - TICK))


async def wait_with_trigger(export_id: str, args: argparse.Namespace, deadline: float) -> str:
    from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

    trigger = MsgHistoryExportTrigger(
        export_id=export_id, poll_interval=args.poll, end_time=deadline, page_size=args.page_size
    )
    async for event in trigger.run():
        return str(event.payload["status"])
    return "no event"


async def wait_naively(export_id: str, args: argparse.Namespace, deadline: float) -> str:
    """What a first attempt often looks like: the sync hook in the default thread pool, no page hint."""
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

    loop = asyncio.get_running_loop()
    hook = MsgHistoryHook()
    while time.time() < deadline:
        ctx = contextvars.copy_context()
        job = await loop.run_in_executor(None, ctx.run, hook.get_client().get_export, export_id)
        if job.ready:
            return "success"
        await asyncio.sleep(args.poll)
    return "timeout"


async def worker(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

    if mode == "trigger":
        # A triggerer imports a trigger's class once, to deserialize it, before running any: not a cost
        # of the waits (the naive mode's hook is imported above, likewise).
        import airflow_provider_msghistory.triggers.export  # noqa: F401

    counter: Counter[str] = Counter()
    request_times: list[float] = []
    count_requests(counter, request_times)
    hook = MsgHistoryHook()
    client = hook.get_client()
    submitted_at: dict[str, float] = {}

    def submit(_: int) -> str:
        began = time.time()
        if args.vendor == "8x8":
            export_id = client.submit_message_history_export(*DAY)
        else:
            export_id = client.submit_contacts_export()
        submitted_at[export_id] = began
        return export_id

    with ThreadPoolExecutor(16) as pool:  # submissions are the operators' job, not the triggerer's
        export_ids = list(pool.map(submit, range(args.waits)))
    baseline = rss_mb()
    counter.clear()
    request_times.clear()
    # Collect the setup's garbage now: its allocations must not bring a full collection (~0.1 s with
    # Airflow's modules loaded) due inside the measured waits. Collections the waits cause still count.
    gc.collect()

    gc_pauses: list[tuple[float, float]] = []  # (start, end) on the loop's clock
    gc_started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:  # a collection blocks the loop as long as it runs
        if phase == "start":
            gc_started[0] = time.monotonic()
        else:
            gc_pauses.append((gc_started[0], time.monotonic()))

    gc.callbacks.append(on_gc)
    stop, lags = asyncio.Event(), []
    loop_t0 = asyncio.get_running_loop().time()
    tick = asyncio.create_task(ticker(stop, lags))
    deadline = time.time() + args.export_delay + 120
    wait = wait_with_trigger if mode == "trigger" else wait_naively
    seen: dict[str, float] = {}
    started: dict[str, float] = {}

    async def one(export_id: str) -> None:
        current_wait.set(export_id)
        started[export_id] = time.time()
        if await wait(export_id, args, deadline) == "success":
            seen[export_id] = time.time()

    t0 = time.time()
    tasks = []
    for export_id in export_ids:  # as Airflow's create_triggers starts the triggers it was handed
        tasks.append(asyncio.create_task(one(export_id)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    wall = time.time() - t0
    stop.set()
    await tick
    gc.callbacks.remove(on_gc)  # the collections of the waits only, not of the listing below

    counter = Counter(counter)  # the waits' requests: not the listing below
    times = list(request_times)
    if client.caps.tracking == "list":
        completed = {job.export_id: _epoch(job.completed_at) for job in client.iter_exports(page_size=1000)}
    else:  # no completion time on the wire: the earliest the job can have been created, plus its delay
        completed = {e: submitted_at[e] + args.export_delay for e in export_ids}
    # A wait is charged its own requests plus an equal share of the shared poll's (all waits took part in
    # every round here), so the per-wait figures add up to every request the API served.
    shared_share = counter[SHARED] / len(export_ids)
    per_wait = [counter[e] + shared_share for e in export_ids]
    late, extra, needed_all = [], [], []
    for export_id, requests in zip(export_ids, per_wait, strict=True):
        done_at = completed.get(export_id)
        if export_id not in seen or done_at is None:
            continue
        late.append(seen[export_id] - max(done_at, started[export_id]))
        needed = math.ceil(max(done_at - started[export_id], 0) / args.poll) + 1
        needed_all.append(needed)
        extra.append(requests - needed)
    return {
        "finished": len(seen),
        "wall_to_last_event_s": wall,
        "max_loop_lag_ms": max(lag for _, lag in lags) * 1000,
        # After the first poll interval: once all the waits have started (a real triggerer adds them
        # over time; here all start in the same instant).
        "steady_loop_lag_ms": max((lag for t, lag in lags if t > loop_t0 + args.poll), default=0) * 1000,
        "gc_max_ms": max((end - start for start, end in gc_pauses), default=0.0) * 1000,
        "lag_without_gc_ms": lag_without_gc(lags, gc_pauses) * 1000,
        "peak_rss_mb": rss_mb(),
        "baseline_rss_mb": baseline,
        "requests_total": sum(counter.values()),
        "requests_shared": counter[SHARED],
        "requests_mean": sum(per_wait) / len(per_wait),
        "requests_max": max(per_wait),
        "needed_mean": sum(needed_all) / len(needed_all) if needed_all else None,
        "extra_max": max(extra) if extra else None,
        "peak_per_second": peak_in(times, 1.0),
        "peak_per_minute": peak_in(times, 60.0),
        "late_max_s": max(late) if late else None,
        "late_mean_s": sum(late) / len(late) if late else None,
    }


def lag_without_gc(lags: list[tuple[float, float]], pauses: list[tuple[float, float]]) -> float:
    """The largest lag left once the ticks a collection of more than 5 ms fell into are set aside."""
    long = [(start, end) for start, end in pauses if end - start > 0.005]
    return max(
        (lag for t, lag in lags if not any(start < t + TICK + lag and end > t for start, end in long)),
        default=0.0,
    )


def peak_in(times: list[float], window: float) -> int:
    """The most requests sent within any ``window`` seconds."""
    times, peak, first = sorted(times), 0, 0
    for last, sent in enumerate(times):
        while sent - times[first] >= window:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", choices=["qlara", "8x8"], default="qlara")
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--export-delay", type=float, default=30.0)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument(
        "--page-size", type=int, default=QlaraDialect.list_page_size, help="the trigger's list page size"
    )
    parser.add_argument("--modes", default="trigger,naive")
    parser.add_argument("--worker", choices=["trigger", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker, args))))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    results = {mode: run_mode(mode, args) for mode in args.modes.split(",")}
    report(results, args)


if __name__ == "__main__":
    main()
