"""The kernel manifest: the warm-up records which numba kernels it compiled; a fresh process preloads exactly those
(from numba's cache) before anything calls them, so the first cycle and the simulator's first path on the window's
thread do not pay numba's first load. A damaged manifest is reported and changes nothing else."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from workstation.kernels import preload, record
from workstation.sim.smile import normal_cdf

ROOT = Path(__file__).resolve().parents[1]


def test_a_fresh_process_preloads_the_recorded_kernels_before_their_first_call(tmp_path):
    normal_cdf(np.array([0.0, 1.0]))                     # compiled (or loaded) in this process, as the warm-up does
    manifest = tmp_path / "kernels.pkl"
    assert record(manifest) >= 1
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from workstation.kernels import preload\n"
        "from workstation.sim.smile import normal_cdf\n"
        "before = len(normal_cdf.signatures)\n"
        "ready = preload(Path(sys.argv[1]))\n"
        "print(json.dumps({'before': before, 'ready': ready, 'after': [str(s) for s in normal_cdf.signatures]}))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(manifest)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"] == 0 and seen["ready"] >= 1
    assert seen["after"] == ["(Array(float64, 1, 'C', False, aligned=True),)"]


def test_a_damaged_or_missing_manifest_preloads_nothing_and_raises_nothing(tmp_path, caplog):
    assert preload(tmp_path / "absent.pkl") == 0
    damaged = tmp_path / "kernels.pkl"
    damaged.write_bytes(b"\x80\x04not a pickle")
    assert preload(damaged) == 0
    assert "kernels load on first use" in caplog.text
    x = np.array([-1.0, 0.0, 2.0])                      # and the kernels still work, loaded on first use
    assert np.allclose(normal_cdf(x), [0.15865525393145707, 0.5, 0.9772498680518208], rtol=1e-15, atol=0)
