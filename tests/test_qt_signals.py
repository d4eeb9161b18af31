"""PySide6 6.12.0 drops a reference to True on every Signal(object) emit and kills Python 3.11 within a few
thousand emits (bool_dealloc). The window emits thousands of bus events a minute, so the pin in
pyproject.toml must keep that release out: this test fails if an installed PySide6 has the bug."""
import subprocess
import sys

PROBE = r"""
from PySide6.QtCore import QCoreApplication, QObject, Signal
class Emitter(QObject):
    value = Signal(object)
app = QCoreApplication([])
e = Emitter()
e.value.connect(lambda v: None)
for _ in range(5000):
    e.value.emit(True)
    e.value.emit(None)
print("ok")
"""


def test_signal_emits_do_not_corrupt_refcounts():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-500:]
