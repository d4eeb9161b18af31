"""SIGKILL a journal writer at random moments, many times: the journal must open, be sound, keep every fill the
writer reported committed, hold no partial order, and rebuild the same book as an independent recomputation."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from workstation.storage import Journal

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "helpers" / "journal_writer.py"
ROUNDS = 25


def run_and_kill(db: Path, seed: int, rng: random.Random) -> tuple[set[str], int]:
    """Start the writer, SIGKILL it at a random moment, return the fill ids it reported committed and how many
    the kill waited for. One run in five is killed blind (while it imports, opens or migrates); the others after a
    random number of reported fills plus a few random milliseconds, so a loaded machine only slows the test."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(WRITER), str(db), str(seed)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[bytes] = []
    waited = 0
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0.0, 0.3))  # blind: may land while it imports, opens or migrates
    else:
        first = proc.stdout.readline()
        assert first == b"READY\n", (first, proc.stderr.read() if proc.poll() is not None else b"")
        waited = rng.randint(2, 8)
        while sum(line.startswith(b"FILL ") for line in seen) < waited:
            line = proc.stdout.readline()
            assert line, f"the writer died: {proc.stderr.read().decode()[-2000:]}"
            seen.append(line)
        time.sleep(rng.uniform(0.0, 0.02))  # anywhere in the next transaction
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    lines = (b"".join(seen) + out).decode().split("\n")[:-1]  # only complete lines
    return {line.split()[1] for line in lines if line.startswith("FILL ")}, waited


def independent_book(db: Path) -> dict[int, tuple[int, float, float]]:
    """(quantity, cost basis of what is held in dollars, realised P&L before fees) per contract, from raw rows."""
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT contract_id, contract, side, quantity, price FROM fills ORDER BY id")
    book: dict[int, list[float]] = {}
    for cid, contract, side, qty, price in rows:
        mult = json.loads(contract)["multiplier"]
        q, basis, realized = book.setdefault(cid, [0, 0.0, 0.0])
        signed = qty if side == "BUY" else -qty
        if q * signed >= 0:
            q, basis = q + signed, basis + signed * price * mult
        else:
            closed = min(abs(q), qty)
            released = basis * closed / abs(q)  # cost basis of the units closed
            realized += (closed * price * mult if q > 0 else -closed * price * mult) - released
            old_q, q, basis = q, q + signed, basis - released
            if q * old_q <= 0:  # flat, or crossed through zero: the rest opens at this price
                basis = q * price * mult
        book[cid] = [q, basis, realized]
    conn.close()
    return {cid: (int(q), basis, realized) for cid, (q, basis, realized) in book.items()}


def check_journal(db: Path, committed: set[str]) -> int:
    """All invariants after a crash; returns the number of fills in the journal."""
    with Journal(db) as journal:
        assert journal.integrity_check() == "ok"
        assert journal._rows("PRAGMA foreign_key_check") == []
        orphans = journal._rows("SELECT COUNT(*) FROM order_events e LEFT JOIN orders o USING (client_order_id)"
                                " WHERE o.client_order_id IS NULL")[0][0]
        assert orphans == 0
        # order, its risk checks and its SUBMITTED event were one transaction: all or none
        bare = journal._rows("SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_events e"
                             " WHERE e.client_order_id = o.client_order_id) OR NOT EXISTS (SELECT 1 FROM risk_checks r"
                             " WHERE r.client_order_id = o.client_order_id)")[0][0]
        assert bare == 0
        orders = {o.client_order_id: o for o in journal.orders()}
        fills = journal.fills()
        ids = {f.fill_id for f in fills}
        assert len(ids) == len(fills)
        missing = committed - ids
        assert not missing, f"committed fills lost: {sorted(missing)[:5]}"
        filled: dict[str, int] = {}
        for f in fills:
            assert f.client_order_id in orders
            filled[f.client_order_id] = filled.get(f.client_order_id, 0) + f.quantity
        assert all(filled[cid] <= orders[cid].quantity for cid in filled)
        book = journal.positions_from_fills()
    expected = independent_book(db)
    assert book.keys() == expected.keys()
    for cid, pos in book.items():
        qty, basis, realized = expected[cid]
        assert pos.quantity == qty
        assert math.isclose(pos.quantity * pos.avg_cost * pos.contract.multiplier, basis, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(pos.realized_pnl, realized, rel_tol=1e-9, abs_tol=1e-6)
    return len(fills)


def test_sigkill_loses_no_committed_fill(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    rng = random.Random(20251001)
    committed: set[str] = set()
    total, required = 0, 0
    for round_no in range(ROUNDS):
        reported, waited = run_and_kill(db, seed=round_no, rng=rng)
        committed |= reported
        required += waited
        if db.exists():
            total = check_journal(db, committed)
    assert len(committed) >= required > 50, "the writer hardly wrote: the test proved nothing"
    assert total >= len(committed)
