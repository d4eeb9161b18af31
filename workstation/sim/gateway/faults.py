"""The practice gateway's fault switches (tests and the soak flip them through `PracticeGateway`'s methods)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    """Switches for tests; change them on `gateway.faults` at any time."""

    delay_s: float = 0.0                 # wait this long before handling each request
    reject_orders: int = 0               # reject this many next new orders ...
    reject_reason: str = "practice gateway: order rejected by fault injection"
    fill_slice: int | None = None        # fill at most this many contracts at a time ...
    slice_pause_s: float = 0.0           # ... with this many simulated seconds between slices
    drop_after_order: bool = False       # abort the connection right after the next order reaches the exchange
    live_entitled: bool = True           # False: live data refused (354), delayed data served
    ib_lost: bool = False                # 1100 in force: no data; orders that arrive are counted (and worked)
    farm_down: bool = False              # 2103 in force: no market data; the lines open at the break are dead
    lose_next_ack: bool = False          # the next order or modify is applied, its acknowledgement lost, socket cut
    drop_on_request: int | None = None   # cut the socket when the next request with this message id arrives (once)
