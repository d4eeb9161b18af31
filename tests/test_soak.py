"""The fault soak, short: the workstation (a real `headless --wait` subprocess) auto-trades against the practice
gateway for about 90 s while seeded faults fire (1100/1101/1102, farm down/up, restart with nextValidId rolled back,
a lost acknowledgement, a socket drop, SIGKILL + restart) — a fixed plan, each fault once, so the test is the same on
a quiet or a loaded machine; then the journal must equal the gateway's account, and fresh data must have come back
after every restore. How fast it came back (the 10 s target) is the benchmark's to measure: the 30-minute run is
`benchmarks/soak.py` (its table is in the README)."""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("ib_async")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from sim_day import SIM_DAY  # noqa: E402
from soak import soak, soak_day  # noqa: E402


@pytest.mark.slow
async def test_short_fault_soak_loses_doubles_and_mismatches_nothing(tmp_path):
    plan = ("ib_1101", "farm", "lost_ack", "restart", "ib_1102", "drop", "kill", "ib_1101")
    r = await soak(minutes=0, seed=11, work=tmp_path, min_gap_s=4.0, max_gap_s=9.0, log=lambda *_: None, plan=plan,
                   fresh_wait_s=120.0, day=SIM_DAY)   # a bound for a hung restore only, not a speed target
    assert r["executions"] > 0, "the soak should trade"
    assert r["faults"] == dict(Counter(plan))
    assert (r["fills_lost"], r["fills_doubled"], r["position_mismatches"]) == (0, 0, 0), r
    assert r["package_mismatches"] == 0, r              # each BAG execution matches the journaled package
    assert r["orders_sent_while_ib_lost"] == 0, r["lost_order_delays_s"]
    assert r["duplicate_order_refs"] == 0
    assert r["journal_integrity_ok_after_kills"] == r["kills"] and r["journal_integrity_final"] == "ok"
    assert r["final_exit_code"] == 0
    # causal: after each restore the workstation asked for its index and future lines again (ticks follow)
    for kind, fault in (("1101", "ib_1101"), ("2104", "farm"), ("restart", "restart"), ("kill", "kill")):
        assert r["fresh_after_s"][kind].get("n", 0) == plan.count(fault), r["fresh_after_s"]
    assert not r["never_fresh"], r["never_fresh"]


def test_the_soak_day_always_has_an_expiry_in_the_workstations_window():
    """Run on a Friday before a Friday holiday, the 7-9-day window is a holiday and a weekend: no expiry is listed,
    the workstation finds nothing to trade (the suite hung there with its clock moved to 2026-12-18). The soak's
    gateway then trades the nearest day before it whose window has one; the tests pin their day anyway."""
    from datetime import date

    assert soak_day(date(2026, 12, 7)) == date(2026, 12, 7)
    assert soak_day(date(2026, 12, 18)) == date(2026, 12, 17)      # 25 Dec (Fri), 26-27: nothing; 17 -> 24 Dec
    assert soak_day(date(2026, 12, 25)) == date(2026, 12, 24)      # 1 Jan 2027 (Fri) and the weekend
    assert soak_day(date(2027, 3, 19)) == date(2027, 3, 18)        # Good Friday 26 Mar 2027 and the weekend


FIVE_MINUTE_SOAK = os.environ.get("HESTON_SOAK_MINUTES")


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not FIVE_MINUTE_SOAK, reason="the 5-minute soak runs in CI (.ci/run sets HESTON_SOAK_MINUTES=5)")
async def test_the_soak_with_random_faults_for_minutes_loses_doubles_and_mismatches_nothing(tmp_path):
    """The issue's 5-minute soak: seeded random faults (every kind, including SIGKILL and the gateway restart) for
    HESTON_SOAK_MINUTES of wall time, then the same invariants as the fixed plan. Outside `make test` (which
    keeps its 15-minute budget); `.ci/run` runs it after the suite on every landing."""
    r = await soak(minutes=float(FIVE_MINUTE_SOAK), seed=23, work=tmp_path, log=lambda *_: None, fresh_wait_s=120.0,
                   day=SIM_DAY)
    assert r["executions"] > 0 and sum(r["faults"].values()) >= 5, r["faults"]
    assert (r["fills_lost"], r["fills_doubled"], r["position_mismatches"]) == (0, 0, 0), r
    assert r["package_mismatches"] == 0, r              # each BAG execution matches the journaled package
    assert r["orders_sent_while_ib_lost"] == 0, r["lost_order_delays_s"]
    assert r["duplicate_order_refs"] == 0
    assert r["journal_integrity_ok_after_kills"] == r["kills"] and r["journal_integrity_final"] == "ok"
    assert r["final_exit_code"] == 0
    assert not r["never_fresh"], r["never_fresh"]
