"""The practice gateway: the simulated market and paper exchange over the TWS API protocol (server version 178).

`python main.py gateway --port 7497 [--seed N] [--speed X]` runs it until Ctrl+C; the IB adapters (and TWS API
clients such as ib_async 2.1) connect to it as they would to TWS or IB Gateway.
"""
from __future__ import annotations

import asyncio
import logging
import signal

from workstation.sim.gateway.protocol import SERVER_VERSION
from workstation.sim.gateway.server import DEFAULT_ACCOUNT, Faults, PracticeGateway

__all__ = ["PracticeGateway", "Faults", "run_gateway", "SERVER_VERSION", "DEFAULT_ACCOUNT"]

log = logging.getLogger(__name__)


def gateway_settings(settings, seed: int | None = None, speed: float | None = None):
    """A copy of `settings` with the simulator's seed and speed overridden by the command line."""
    settings = settings.model_copy(deep=True)
    sim = settings.market.simulator
    if seed is not None:
        sim.seed = seed
    if speed is not None:
        sim.speed = speed
    return settings


def run_gateway(settings, args) -> int:
    """Serve until interrupted; the exit code is 0 on a clean stop, 2 when the port cannot be bound."""
    settings = gateway_settings(settings, getattr(args, "seed", None), getattr(args, "speed", None))
    host = getattr(args, "host", None) or "127.0.0.1"
    port = int(getattr(args, "port", None) or 7497)

    async def serve() -> int:
        gateway = PracticeGateway(settings)
        try:
            bound = await gateway.start(host, port)
        except OSError as exc:
            print(f"error: cannot listen on {host}:{port}: {exc}")
            return 2
        sim = settings.market.simulator
        restart_at = getattr(args, "restart_at", None)
        if restart_at:
            nxt = gateway.schedule_daily_restart(restart_at, down_s=float(getattr(args, "restart_down_s", 60.0)))
            print(f"Daily restart at {restart_at} America/New_York (simulated time; next {nxt:%Y-%m-%d %H:%M} UTC): "
                  "connections dropped, port closed, nextValidId rolled back.", flush=True)
        print(f"Practice gateway on {host}:{bound} - TWS API server version {SERVER_VERSION}, account "
              f"{gateway.account}, {'/'.join(sim.underlyings)} options, seed {sim.seed}, speed {sim.speed:g}x, "
              f"simulated time {gateway.now():%Y-%m-%d %H:%M} UTC. Ctrl+C stops it.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C raises KeyboardInterrupt instead
                pass
        try:
            await stop.wait()
        finally:
            await gateway.stop()
        print("Practice gateway stopped.", flush=True)
        return 0

    return asyncio.run(serve())
