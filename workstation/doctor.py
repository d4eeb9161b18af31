"""`python main.py doctor`: check the set-up and print one PASS/FAIL line per check, with the fix."""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .storage.paths import data_dir_for

REQUIRED = {
    "PySide6-Essentials": "6.6", "pyqtgraph": "0.13", "PyOpenGL": "3.1", "qasync": "0.27", "numpy": "1.26",
    "scipy": "1.11", "numba": "0.59", "ib_async": "2.1", "PyYAML": "6.0", "pydantic": "2.5",
    "platformdirs": "4.0", "pyarrow": "14",
}
CONFLICTING = "ib_insync"   # clashes with ib_async on eventkit


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, f"Python {version}", "install Python 3.11 or newer")


def check_packages() -> list[Check]:
    checks = []
    for name, minimum in REQUIRED.items():
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            checks.append(Check(f"package {name}", False, "not installed", "run `make run` (installs into .venv)"))
            continue
        ok = _version_tuple(found) >= _version_tuple(minimum)
        checks.append(Check(f"package {name}", ok, f"{found} (need >= {minimum})",
                            f"pip install -U '{name}>={minimum}'"))
    try:
        metadata.version(CONFLICTING)
        checks.append(Check("no ib_insync", False, "ib_insync is installed beside ib_async",
                            "pip uninstall ib_insync (it clashes with ib_async on eventkit)"))
    except metadata.PackageNotFoundError:
        checks.append(Check("no ib_insync", True, "ib_insync absent"))
    return checks


_QT_PROBE = r"""
import sys
from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext
app = QGuiApplication(sys.argv[:1])
print("platform", app.platformName())
ctx = QOpenGLContext()
ok = ctx.create()
surface = QOffscreenSurface(); surface.create()
ok = ok and ctx.makeCurrent(surface)
print("opengl", "yes" if ok else "no")
"""


def check_qt() -> list[Check]:
    """Start Qt in a child process (a broken GL driver must not take the doctor down)."""
    try:
        out = subprocess.run([sys.executable, "-c", _QT_PROBE], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return [Check("qt", False, "Qt start timed out", "check DISPLAY / QT_QPA_PLATFORM")]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    if "platform" not in lines:
        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return [Check("qt", False, f"Qt did not start: {err}",
                      "install libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3, or set "
                      "QT_QPA_PLATFORM=offscreen")]
    checks = [Check("qt", True, f"platform {lines['platform']}")]
    gl = lines.get("opengl") == "yes"
    checks.append(Check("opengl", gl, "OpenGL context works" if gl else "no OpenGL: the 3-D surface falls back to 2-D",
                        "install libgl1/libegl1 and run on a desktop (or Xvfb) for the 3-D view"))
    return checks


def _unwritable(path: Path) -> str:
    """'' when a file can be created in `path` (made if missing), else why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"{path} not writable ({exc.strerror})"
    return ""


def check_numba_cache() -> Check:
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or str(Path(__file__).resolve().parent / "pricing" / "__pycache__")
    path = Path(cache_dir)
    problem = _unwritable(path)
    if problem:
        return Check("numba cache", False, problem, "set NUMBA_CACHE_DIR to a writable directory")
    cached = len(list(path.glob("*.nbi")))
    return Check("numba cache", True, f"{path} writable, {cached} cached kernel(s)")


def check_data_dir(data_dir: Path) -> Check:
    problem = _unwritable(data_dir)
    if problem:
        return Check("data dir", False, problem, "pass --data-dir with a writable directory")
    return Check("data dir", True, f"{data_dir} writable")


def check_ib(settings: Settings) -> Check:
    needed = settings.market.source == "ib" or settings.execution.broker == "ib"
    host, port = settings.ib.host, settings.ib.port
    try:
        with socket.create_connection((host, port), timeout=1.5):
            return Check("ib", True, f"{host}:{port} answers")
    except OSError as exc:
        detail = f"{host}:{port} does not answer ({exc.strerror or exc})"
        if not needed:
            return Check("ib", True, f"{detail}; not needed (market.source={settings.market.source})")
        return Check("ib", False, detail,
                     "start TWS / IB Gateway with the API enabled on that port, or the practice gateway: "
                     f"python main.py gateway --port {port}")


def check_config(problems: list[str]) -> Check:
    if problems:
        return Check("config", False, "; ".join(problems), "correct the fields named above in the YAML file")
    return Check("config", True, "settings valid")


def run_checks(settings: Settings, data_dir: Path, config_problems: list[str] | None = None) -> list[Check]:
    return [check_python(), *check_packages(), *check_qt(), check_numba_cache(),
            check_config(config_problems or []), check_data_dir(data_dir), check_ib(settings)]


def run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Print PASS/FAIL per check; exit 1 when any fails."""
    checks = run_checks(settings, data_dir_for(args), getattr(args, "config_problems", []))
    for c in checks:
        line = f"{'PASS' if c.ok else 'FAIL'}  {c.name:<22} {c.detail}"
        if not c.ok and c.fix:
            line += f"\n      fix: {c.fix}"
        print(line)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
