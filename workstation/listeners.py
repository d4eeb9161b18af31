"""Listeners: how a broker, a feed, the simulated world or the alert router tells whoever listens.

`append` a callable to listen; calling the list tells each listener in turn, and one that raises is logged and
does not stop the others (a broken panel must not stop a fill reaching the journal)."""
from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


class Listeners(list):
    """A list of callables that is itself callable: `listeners(event)` calls each with `event`."""

    def __init__(self, what: str = "listener", listeners: tuple[Callable[..., Any], ...] = ()) -> None:
        super().__init__(listeners)
        self.what = what

    def __call__(self, *args: Any) -> None:
        for listener in list(self):          # a listener may unsubscribe itself while being told
            try:
                listener(*args)
            except Exception:
                log.exception("%s %r failed", self.what, listener)
