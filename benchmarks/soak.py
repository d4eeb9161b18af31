"""Fault soak: the workstation auto-trades against the practice gateway for N minutes while faults fire at random.

The gateway runs in this process; the workstation is a real `main.py headless --wait` subprocess on the IB code path
(ib_async over a socket). Seeded faults: IB lost with the socket up (1100, then 1101 or 1102), the market-data farm
broken and back (2103/2104), the nightly restart (the socket drops, the port closes, nextValidId rolls back), an
acknowledgement lost with its socket, a plain socket drop, and SIGKILL of the workstation (restarted at once; the
journal's `PRAGMA integrity_check` is read while it is down). At the end a last clean run reconciles and stops, and
the journal is compared with the gateway's account.

Run: `.venv/bin/python benchmarks/soak.py --minutes 30 [--seed 7]` — prints a table, writes
benchmarks/results/soak.json. Fresh data = the client requested its index and future streaming lines again
(measured at the gateway: ticks follow within its 0.25 s tick interval). Orders sent while IB was lost = orders the
gateway received after the workstation's first request following the 1100 (the client's clock sync on 1100): what
arrives before that was on its way before the 1100 reached the workstation ("crossing").
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation.config import Settings  # noqa: E402
from workstation.domain.calendar import is_trading_day  # noqa: E402
from workstation.sim.gateway import PracticeGateway  # noqa: E402
from workstation.storage import Journal  # noqa: E402

CLIENT_ID = 17
WINDOW_DAYS = (7, 9)              # the workstation's expiry window (min/max_expiry_days in CONFIG)
FAULTS = ("ib_1101", "ib_1102", "farm", "restart", "lost_ack", "drop", "kill")
FRESH_TARGET_S = 10.0            # fresh data again within 10 s of a 1101 or a 2104 (the table checks it)
CONFIG = """
market: {{source: ib, snapshot_interval_s: 1.0, min_expiry_days: {min_days}, max_expiry_days: {max_days}, strike_window: 0.05,
         stale_after_s: 60}}
execution: {{broker: ib, aggressiveness: 1.0, on_exit: cancel, reprice_interval_s: 5, order_timeout_s: 60,
             trading_enabled: {trading}}}
signals: {{min_history: 3, min_zscore: 1.5, auto_execute: true, auto_execute_packages: true}}
risk: {{allow_uncovered_shorts: true, max_orders_per_minute: 60, max_var_99: 1.0e8, max_delta_dollars: 1.0e8,
        max_gamma_dollars: 1.0e8, max_vega_dollars: 1.0e8, max_daily_loss: 1.0e8, buying_power: 1.0e9}}
ib: {{host: 127.0.0.1, port: {port}, client_id: {client_id}, connect_timeout_s: 5, reconnect_max_backoff_s: 2}}
"""


def soak_day(today: date) -> date:
    """The gateway's simulated trade date: `today`, or the nearest day before it whose expiry window holds a trading
    day. From the Friday before a Friday Christmas (or Good Friday) the window 7-9 days out is a holiday and a
    weekend, with no expiry listed: the workstation would find nothing to trade."""
    day = today
    while not any(is_trading_day(day + timedelta(days=n)) for n in range(WINDOW_DAYS[0], WINDOW_DAYS[1] + 1)):
        day -= timedelta(days=1)
    return day


def gateway_settings(seed: int, speed: float, day: date | None = None) -> Settings:
    """The practice gateway's market: always open, on `day` (default: `soak_day` of today)."""
    s = Settings()
    sim = s.market.simulator
    sim.always_open, sim.speed, sim.seed = True, speed, seed
    sim.start_date = day or soak_day(date.today())
    sim.mispricing_rate, sim.mispricing_size_vol = 2.0, 0.05
    sim.mispricing_max_spreads = 100.0      # every planted mispricing in full (arbitrage too): orders flow
    s.execution.paper.latency_ms = 20
    return s


class Workstation:
    """`main.py headless --wait` on one data dir (user dirs inside the work dir); SIGKILL and restart."""

    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.data = work / "data"
        self.config = work / "soak.yaml"
        self.write_config(port, trading=True)
        dirs = {f"XDG_{k}_HOME": str(work / "xdg" / k.lower()) for k in ("CONFIG", "DATA", "STATE", "CACHE")}
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), **dirs}
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def write_config(self, port: int, trading: bool) -> None:
        self.config.write_text(CONFIG.format(port=port, client_id=CLIENT_ID, trading=str(trading).lower(),
                                             min_days=WINDOW_DAYS[0], max_days=WINDOW_DAYS[1]),
                               encoding="utf-8")

    def start(self, duration: float = 86_400.0) -> None:
        self.runs += 1
        log = open(self.work / f"run{self.runs}.log", "wb")
        cmd = [sys.executable, "-u", str(ROOT / "main.py"), "headless", "--config", str(self.config), "--wait",
               "--duration", str(duration), "--data-dir", str(self.data),
               "--log-level", os.environ.get("SOAK_LOG_LEVEL", "WARNING")]        # INFO/DEBUG to investigate
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> str:
        """SIGKILL; the journal's integrity verdict read while nothing runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        return integrity(self.data)


def integrity(data: Path) -> str:
    path = data / "journal.sqlite"
    if not path.exists():
        return "ok"
    journal = Journal(path)
    try:
        return journal.integrity_check()
    finally:
        journal.close()


async def until(predicate, timeout: float, step: float = 0.05) -> float | None:
    """Seconds until `predicate` held, None after `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        await asyncio.sleep(step)
    return None


def streaming_again(gw: PracticeGateway, since: float):
    return lambda: {kind for at, kind in gw.stream_requests if at >= since} >= {"IND", "FUT"}


async def soak(minutes: float, seed: int, speed: float = 5.0, work: Path | None = None,
               min_gap_s: float = 6.0, max_gap_s: float = 18.0, log=print,
               plan: Sequence[str] | None = None, fresh_wait_s: float = 30.0, day: date | None = None) -> dict:
    """Fire seeded random faults for `minutes` of wall time — or, with `plan`, exactly those faults in that order
    (however long they take), so what is tested does not depend on how fast the machine is.

    `fresh_wait_s` is how long to wait for fresh data after a 1101/2104 (a restart waits twice that, a SIGKILL and
    restart four times) before counting the restore as never fresh. `day`: the gateway's simulated trade date
    (default: `soak_day` of today; tests pin it)."""
    rng = random.Random(seed)
    if plan is not None and (bad := set(plan) - set(FAULTS)):
        raise ValueError(f"unknown faults {sorted(bad)}; known: {', '.join(FAULTS)}")
    todo = list(plan) if plan is not None else None
    gw = PracticeGateway(gateway_settings(seed, speed, day))
    port = await gw.start("127.0.0.1", 0)
    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="soak-")
        work = Path(tmp.name)
    ws = Workstation(work, port)
    fresh: dict[str, list[float]] = {"1101": [], "2104": [], "restart": [], "kill": []}
    never_fresh: Counter = Counter()
    fired: Counter = Counter()
    kills_ok, kills = 0, 0
    t_start = time.monotonic()
    deadline = t_start + minutes * 60
    try:
        ws.start()
        if await until(lambda: CLIENT_ID in gw.sessions and len(gw.executions) > 0, 180) is None:
            log("warning: no execution within 180 s of the first start")
        while todo if todo is not None else time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(min_gap_s, max_gap_s))
            fault = todo.pop(0) if todo is not None else rng.choice(FAULTS)
            fired[fault] += 1
            if fault in ("ib_1101", "ib_1102", "farm"):
                gw.lose_ib() if fault != "farm" else gw.farm_down()
                await asyncio.sleep(rng.uniform(2.0, 8.0))
                t0 = time.monotonic()
                if fault == "farm":
                    gw.farm_up()
                else:
                    gw.restore_ib(data_lost=fault == "ib_1101")
                if fault != "ib_1102":
                    key = "2104" if fault == "farm" else "1101"
                    took = await until(streaming_again(gw, t0), fresh_wait_s)
                    fresh[key].append(took) if took is not None else never_fresh.update([key])
            elif fault == "restart":
                t0 = time.monotonic()
                await gw.restart(down_s=rng.uniform(1.0, 5.0), rollback_ids=True)
                took = await until(streaming_again(gw, t0), 2 * fresh_wait_s)
                fresh["restart"].append(took) if took is not None else never_fresh.update(["restart"])
            elif fault == "lost_ack":
                gw.lose_next_ack()
            elif fault == "drop":
                gw.drop_connections(CLIENT_ID)
            else:
                kills += 1
                verdict = await asyncio.to_thread(ws.kill)      # the gateway keeps serving meanwhile
                kills_ok += verdict == "ok"
                t0 = time.monotonic()
                ws.start()
                took = await until(streaming_again(gw, t0), 4 * fresh_wait_s)
                fresh["kill"].append(took) if took is not None else never_fresh.update(["kill"])
            log(f"{time.monotonic() - t_start:7.1f}s {fault:9s} executions {len(gw.executions):4d} "
                f"orders {sum(gw.order_refs.values()):4d} while-lost {gw.orders_while_lost} crossing {gw.orders_crossing_loss}")
        # the end: kill the last run, cancel what still works at the broker (so nothing fills unseen), then one
        # clean run with trading off that recovers, reconciles and stops
        kills += 1
        kills_ok += await asyncio.to_thread(ws.kill) == "ok"
        gw.faults.lose_next_ack = False
        gw.cancel_all_orders()
        ws.write_config(port, trading=False)
        ws.start(duration=30)
        await asyncio.get_running_loop().run_in_executor(None, ws.proc.wait, 240)
        final_rc = ws.proc.returncode
    finally:
        if ws.proc is not None and ws.proc.poll() is None:
            ws.proc.kill()
        await gw.stop()
    result = compare(ws.data, gw)
    result.update({
        "minutes": round((time.monotonic() - t_start) / 60, 1), "seed": seed, "speed": speed,
        "faults": dict(fired), "workstation_runs": ws.runs, "final_exit_code": final_rc,
        "kills": kills, "journal_integrity_ok_after_kills": kills_ok,
        "orders_sent_while_ib_lost": gw.orders_while_lost,
        "orders_crossing_the_1100": gw.orders_crossing_loss,
        "lost_order_delays_s": [round(d, 3) for d in gw.lost_order_delays],
        "duplicate_order_refs": len(gw.duplicate_order_refs),
        "fresh_after_s": {k: _stats(v) for k, v in fresh.items()}, "never_fresh": dict(never_fresh),
        "fresh_wait_s": fresh_wait_s,
    })
    if tmp is not None:
        tmp.cleanup()
    return result


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def compare(data: Path, gw: PracticeGateway) -> dict:
    """The journal against the gateway's account: fills lost or doubled, packages filled differently, positions that
    differ. A combo's fill is reported by IB as one execution per leg (each a fill, journaled under the combo's
    order id) and one execution of the BAG itself (the package at its net price: no fill, no position): the legs are
    compared fill by fill, the BAG's executions package by package with the journaled state of the combo."""
    journal = Journal(data / "journal.sqlite")
    try:
        fills = journal.fills()
        packages = {cid: e.filled_quantity for cid, e in journal.combo_states().items()}
        book = {cid: p.quantity for cid, p in journal.positions_from_fills().items() if p.quantity}
        integrity_final = journal.integrity_check()
    finally:
        journal.close()
    ours = [e for e in gw.executions if e.client_id == CLIENT_ID]
    legs = [e for e in ours if e.contract.sec_type != "BAG"]
    bags: Counter = Counter()
    for e in ours:
        if e.contract.sec_type == "BAG":
            bags[e.order_ref] += int(round(e.shares))
    at_gateway = Counter(e.exec_id for e in legs)
    journaled = Counter(f.fill_id for f in fills if not f.client_order_id.startswith("ACCEPT-BROKER"))
    broker = {cid: qty for cid, qty in gw.positions().items() if qty}
    return {
        "executions": len(legs), "bag_executions": len(ours) - len(legs), "journal_fills": sum(journaled.values()),
        "fills_lost": sum(1 for x in at_gateway if x not in journaled),
        "fills_doubled": sum(n - 1 for n in journaled.values() if n > 1) + sum(1 for x in journaled
                                                                               if x not in at_gateway),
        "package_mismatches": sum(1 for ref in set(bags) | {r for r, n in packages.items() if n}
                                  if bags.get(ref, 0) != packages.get(ref, 0)),
        "position_mismatches": sum(1 for cid in set(book) | set(broker) if book.get(cid, 0) != broker.get(cid, 0)),
        "orders": sum(gw.order_refs.values()), "journal_integrity_final": integrity_final,
    }


def table(r: dict) -> str:
    f = r["fresh_after_s"]

    def fmt(k: str) -> str:
        s = f.get(k, {"n": 0})
        return f"{s['median']} / {s['max']} (n={s['n']})" if s["n"] else "—"

    def against_target(k: str) -> str:
        s = f.get(k, {"n": 0})
        met = "met" if s["n"] and s["max"] <= FRESH_TARGET_S else "missed" if s["n"] else "not measured"
        return f"{fmt(k)}; target <= {FRESH_TARGET_S:g} s: {met}"
    wait = r.get("fresh_wait_s", 30.0)
    rows = [
        ("duration (min), seed, market speed", f"{r['minutes']}, {r['seed']}, {r['speed']:g}x"),
        ("faults fired", ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()))),
        ("orders sent / executions (fills; and BAG package reports)",
         f"{r['orders']} / {r['executions']} (+{r['bag_executions']} BAG)"),
        ("fills lost", r["fills_lost"]), ("fills doubled", r["fills_doubled"]),
        ("combo packages filled differently (BAG executions vs journal)", r["package_mismatches"]),
        ("position mismatches (journal vs gateway)", r["position_mismatches"]),
        ("orders sent while IB was lost (after the workstation had the 1100)", r["orders_sent_while_ib_lost"]),
        ("orders that crossed the 1100 (sent before it reached the workstation)",
         f"{r['orders_crossing_the_1100']} (arrived up to {max(r['lost_order_delays_s'], default=0):.2f} s "
         "after it went out)"),
        ("duplicate orderRefs", r["duplicate_order_refs"]),
        ("fresh data after 1101, s (median / max)", against_target("1101")),
        ("fresh data after 2104, s (median / max)", against_target("2104")),
        ("fresh data after a gateway restart, s", fmt("restart")),
        ("fresh data after a SIGKILL + restart, s", fmt("kill")),
        (f"restores without fresh data within the wait ({wait:g} s; restart {2 * wait:g} s; kill {4 * wait:g} s)",
         ", ".join(f"{k} {v}" for k, v in r["never_fresh"].items()) or "none"),
        ("journal integrity ok after kills", f"{r['journal_integrity_ok_after_kills']} / {r['kills']}"),
        ("final clean run exit code", r["final_exit_code"]),
    ]
    return "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--speed", type=float, default=5.0, help="simulated market speed")
    ap.add_argument("--work", type=Path, help="keep logs and the journal here")
    ap.add_argument("--day", type=date.fromisoformat, help="the simulated trade date, YYYY-MM-DD (default: today, or "
                                                          "the nearest day before it with an expiry 7-9 days out)")
    args = ap.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(soak(args.minutes, args.seed, args.speed, args.work, day=args.day))
    print(table(result))
    out = ROOT / "benchmarks" / "results" / "soak.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"written to {out}")
    ok = not (result["fills_lost"] or result["fills_doubled"] or result["position_mismatches"]
              or result["package_mismatches"]
              or result["orders_sent_while_ib_lost"] or result["duplicate_order_refs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
