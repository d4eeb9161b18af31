"""The practice gateway for tests: settings, a running gateway on a free port, and a guard on ib_async's decoder."""
from __future__ import annotations

import asyncio
import logging
import re

import pytest

from engine_support import SIM_DAY
from workstation.config import Settings
from workstation.sim.gateway import PracticeGateway

HOST = "127.0.0.1"
TWS_ERROR = re.compile(r"^(Error|Warning) -?\d+, reqId -?\d+")


def practice_settings(**sim) -> Settings:
    """An always-open simulator on the pinned test day at speed 5 (`sim` overrides market.simulator fields),
    fills after 20 ms."""
    s = Settings()
    s.market.simulator.start_date = SIM_DAY
    s.market.simulator.mispricing_max_spreads = 100.0   # planted in full: signals to trade (arbitrage too)
    s.market.simulator.always_open = True
    s.market.simulator.speed = sim.pop("speed", 5.0)
    for k, v in sim.items():
        setattr(s.market.simulator, k, v)
    s.execution.paper.latency_ms = 20
    return s


async def wait_for(predicate, timeout: float = 5.0, step: float = 0.05) -> bool:
    """Poll `predicate` while the loop runs; its last value after `timeout` seconds."""
    for _ in range(int(timeout / step)):
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


@pytest.fixture
async def gateway():
    gw = PracticeGateway(practice_settings())
    await gw.start(HOST, 0)
    yield gw
    await gw.stop()


class DecoderErrors(logging.Handler):
    """Collects ERROR records of ib_async's decoder and, when `strict`, wrapper errors that are not TWS error
    codes (a message layout ib_async cannot read is otherwise only a log line)."""

    def __init__(self, strict: bool) -> None:
        super().__init__(logging.ERROR)
        self.strict = strict
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.name == "ib_async.Decoder" or (self.strict and record.name.startswith("ib_async")
                                                 and not TWS_ERROR.match(msg)
                                                 and "API connection failed" not in msg
                                                 and "Peer closed connection" not in msg):
            self.records.append(f"{record.name}: {msg[:400]}")


def _guard(strict: bool):
    handler = DecoderErrors(strict)
    logger = logging.getLogger("ib_async")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
    assert not handler.records, "ib_async could not handle messages:\n" + "\n".join(handler.records)


@pytest.fixture
def decoder_errors():
    """Fail the test on any decoder error or non-TWS wrapper error."""
    yield from _guard(strict=True)


@pytest.fixture
def decoder_clean():
    """Fail the test on any decoder error (connection failures the test provokes are fine)."""
    yield from _guard(strict=False)
