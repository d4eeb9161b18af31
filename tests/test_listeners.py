"""One way to tell listeners: every broker, feed and the simulated world call their `Listeners`, and a listener
that raises is logged without stopping the others (a broken panel must not keep a fill from the journal)."""
from __future__ import annotations

import logging

from workstation.listeners import Listeners


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    heard: list[int] = []

    def broken(x: int) -> None:
        raise RuntimeError("panel gone")
    told = Listeners("fill callback", (heard.append, broken))
    told.append(lambda x: heard.append(x * 10))
    with caplog.at_level(logging.ERROR):
        told(7)
    assert heard == [7, 70]
    assert "fill callback" in caplog.text and "panel gone" in caplog.text


def test_a_listener_may_unsubscribe_while_being_told():
    heard: list[str] = []
    told = Listeners()

    def once(x: str) -> None:
        heard.append(x)
        told.remove(once)
    told.append(once)
    told.append(heard.append)
    told("a")
    told("b")
    assert heard == ["a", "a", "b"]


def test_every_broker_feed_and_the_world_tell_through_listeners():
    from workstation.backtest.broker import BacktestBroker
    from workstation.config import Settings
    from workstation.execution.paper import PaperBroker
    from workstation.market.sim_feed import SimulatedFeed
    from workstation.sim.world import SimWorld

    settings = Settings()
    world = SimWorld.from_settings(settings, manual=True)
    for source in (PaperBroker(world), BacktestBroker(settings.execution.paper)):
        assert isinstance(source.on_fill, Listeners) and isinstance(source.on_order_event, Listeners)
    assert isinstance(world.on_event, Listeners)
    assert isinstance(SimulatedFeed.from_settings(settings, world=world).on_status, Listeners)
