"""Shared test set-up. Qt tests run headless: QT_QPA_PLATFORM defaults to offscreen (xvfb-run sets DISPLAY
and a test may ask for xcb explicitly); tests marked `xvfb` need a real X server and skip without one."""
from __future__ import annotations

import os

import pytest

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") != "offscreen":
        return
    skip = pytest.mark.skip(reason="needs an X server: run under xvfb-run")
    for item in items:
        if "xvfb" in item.keywords:
            item.add_marker(skip)
