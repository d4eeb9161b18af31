"""The numba kernels, loaded from numba's cache before the first snapshot needs them.

numba loads a cached kernel the first time it is called, and the first load in a process also registers numba's
own implementations: ~0.45 s, then a few ms a kernel. Left to first use, that lands in the first cycle (the
worker) and in the simulator's first index path (the event loop's thread), and the first surface waits for it.

The warm-up (`make run`, `make test`) compiles every kernel once and `record`s which kernels and signatures it
compiled in a manifest beside numba's cache; at start the engine `preload`s them in a numerics thread while the
window is built (and the implied-vol guess tables, which the first cycle would build on first use). A kernel whose cache is
missing or stale is compiled there, in a worker, never on the window's thread; a missing or damaged manifest only
means the kernels load on first use, as before.
"""
from __future__ import annotations

import importlib
import logging
import pickle
import sys
from importlib.metadata import version
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "workstation"


def manifest_path() -> Path:
    """The manifest of this numba version (a signature pickled by another version may not load)."""
    return Path(__file__).parent / "__pycache__" / f"kernels-numba-{version('numba')}.pkl"


def compiled_kernels() -> dict[tuple[str, str], list]:
    """Every kernel of the package compiled in this process: (module, name) -> its signatures."""
    from numba.core.registry import CPUDispatcher

    found: dict[tuple[str, str], list] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == PACKAGE or name.startswith(PACKAGE + ".")):
            continue
        for attr, obj in list(vars(module).items()):
            if isinstance(obj, CPUDispatcher) and obj.__module__ == name and obj.signatures:
                found[(name, attr)] = list(obj.signatures)
    return found


def record(path: Path | None = None) -> int:
    """Write the manifest of the kernels compiled in this process (the warm-up's); how many kernels."""
    path = path or manifest_path()
    found = compiled_kernels()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(found))
    tmp.replace(path)
    return len(found)


def preload(path: Path | None = None) -> int:
    """Load every kernel of the manifest (from numba's cache; compiled if the cache is stale); how many signatures
    are ready. Never raises: a kernel that cannot be loaded here loads on first use."""
    path = path or manifest_path()
    try:
        manifest = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return 0
    except Exception as exc:            # damaged, or written by an incompatible version: first use loads them
        log.warning("kernel manifest %s unreadable (%r): kernels load on first use", path, exc)
        return 0
    ready = 0
    for (module, name), signatures in manifest.items():
        try:
            kernel = getattr(importlib.import_module(module), name)
            for signature in signatures:
                kernel.compile(signature)
                ready += 1
        except Exception as exc:        # renamed or retyped since the warm-up
            log.debug("kernel %s.%s not preloaded: %r", module, name, exc)
    try:                                # what the first cycle would otherwise build: the implied-vol guess tables
        from .pricing.implied_vol import guess_tables
        guess_tables()
    except Exception as exc:            # built on first use instead, and failing there if it must
        log.debug("implied-vol guess tables not prepared: %r", exc)
    return ready
