"""Journal writer for the crash test: trades forever, printing `FILL <id>` after each fill is committed.

Usage: python tests/helpers/journal_writer.py JOURNAL SEED. Each order is journaled with its risk checks and
its SUBMITTED event in one transaction (as the engine does), then filled in pieces, each fill before its event.
"""
from __future__ import annotations

import random
import sys
from datetime import date, datetime, timezone

from workstation.domain import (Alert, Contract, Fill, HestonParams, Order, OrderEvent, OrderPurpose, OrderStatus,
                                Right, SecType, Severity, Side)
from workstation.storage import Journal

CONTRACTS = [
    Contract(101, "SPX", SecType.OPTION, "SPXW", date(2025, 10, 17), 6700.0, Right.CALL),
    Contract(102, "SPX", SecType.OPTION, "SPXW", date(2025, 10, 17), 6500.0, Right.PUT),
    Contract(201, "XSP", SecType.OPTION, "XSP", date(2025, 11, 21), 650.0, Right.PUT),
    Contract(900, "SPX", SecType.FUTURE, "MES", date(2025, 12, 19), multiplier=5.0, exchange="CME"),
]


def say(line: str) -> None:
    """One write per line, flushed: a line the test reads was printed after its commit."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def trade(journal: Journal, rng: random.Random) -> None:
    """One order: journal it (with checks and SUBMITTED) atomically, then fill it in random pieces."""
    now = datetime.now(timezone.utc)
    cid = journal.next_client_order_id("T")
    contract, side, qty = rng.choice(CONTRACTS), rng.choice(list(Side)), rng.randint(1, 6)
    price = round(rng.uniform(0.5, 50.0), 2)
    with journal.transaction():
        journal.record_order(Order(cid, contract, side, qty, limit_price=price, created_at=now,
                                   purpose=OrderPurpose.SIGNAL))
        journal.record_risk_checks(cid, [{"name": "max_quantity", "passed": True},
                                         {"name": "price_band", "passed": True}])
        journal.record_order_event(OrderEvent(cid, OrderStatus.SUBMITTED, now, 0, qty, limit_price=price))
    filled = 0
    while filled < qty:
        n = rng.randint(1, qty - filled)
        fill_price = round(price + rng.uniform(-0.2, 0.2), 2)
        fid = f"{cid}-E{filled}"
        if journal.record_fill(Fill(fid, cid, contract, side, n, fill_price, now, commission=0.65 * n)):
            say(f"FILL {fid}")
        filled += n
        status = OrderStatus.FILLED if filled == qty else OrderStatus.PARTIALLY_FILLED
        journal.record_order_event(OrderEvent(cid, status, now, filled, qty - filled, fill_price))


def side_records(journal: Journal, rng: random.Random) -> None:
    """Now and then a fit or an alert, so those tables are written under fire too."""
    now = datetime.now(timezone.utc)
    if rng.random() < 0.2:
        journal.record_fit(HestonParams(0.04, 2.0, 0.05, 0.6, -0.7), rmse=0.002, elapsed_ms=30.0, quotes_used=500)
    if rng.random() < 0.05:
        journal.record_alert(Alert("TEST", Severity.INFO, "writer", "tick", now))


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    journal = Journal(path)
    replayed = journal.fills()[-1:]  # a broker replaying its last execution after a restart
    if replayed and journal.record_fill(replayed[0]):
        raise SystemExit("replayed fill was stored twice")
    say("READY")
    while True:
        trade(journal, rng)
        side_records(journal, rng)


if __name__ == "__main__":
    main()
