"""First launch as a trader sees it: from typing `make run` to a populated surface on screen (issue 23: <= 3 s).

    .venv/bin/python benchmarks/launch.py --runs 5                        # under xvfb-run, the 3-D view on
    .venv/bin/python benchmarks/launch.py --runs 5 --compare-with ../old  # alternated with another checkout

Each run starts `make run` (under `xvfb-run` when there is no display) with a fresh home, so no saved layout or
settings, on an installed, warmed checkout, and stops it once the window logs "first surface on screen" (the
window's own count from its process start is reported beside the wall time from `make`). With
`--compare-with DIR` the runs alternate between this checkout and DIR (a checkout whose window logs the same
line, installed and warmed: `make run` once there). Prints a table and writes benchmarks/results/launch.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"first surface on screen ([0-9.]+) s after launch")
LIMIT_S = 60.0


def launch(checkout: Path) -> tuple[float, float | None]:
    """One launch of `make run` in `checkout`: (wall seconds from `make` to the log line, the window's own count)."""
    home = Path(tempfile.mkdtemp(prefix="heston-launch-"))
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_STATE_HOME": str(home / "state"), "PYTHONUNBUFFERED": "1"}
    command = ["make", "-s", "run"]
    if not os.environ.get("DISPLAY"):
        command = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", *command]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    wall = own = None
    try:
        for line in process.stdout:
            found = LINE.search(line)
            if found:
                wall, own = time.monotonic() - started, float(found.group(1))
                break
            if time.monotonic() - started > LIMIT_S:
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
    if wall is None:
        raise SystemExit(f"{checkout}: no 'first surface on screen' line within {LIMIT_S:.0f} s")
    return wall, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare-with", type=Path, default=None, help="another checkout, alternated run by run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "launch.json")
    args = parser.parse_args()
    checkouts = {"this": ROOT} | ({"other": args.compare_with.resolve()} if args.compare_with else {})
    # installed and warmed first, so no run pays for it
    subprocess.run(["make", "-s", ".venv/.stamp-warm", ".venv/.stamp-bytecode"], cwd=ROOT, check=True)
    runs: dict[str, list[tuple[float, float | None]]] = {name: [] for name in checkouts}
    for _ in range(args.runs):
        for name, checkout in checkouts.items():
            runs[name].append(launch(checkout))
    result = {"load_average": [round(x, 2) for x in os.getloadavg()], "runs": args.runs, "target_s": 3.0,
              "display": "DISPLAY" if os.environ.get("DISPLAY") else "xvfb-run"}
    print(f"{'checkout':<10} {'from make run, s (each run)':<44} {'median':>7} {'window own':>11}")
    for name, values in runs.items():
        walls = [w for w, _ in values]
        owns = [o for _, o in values if o is not None]
        result[name] = {"checkout": str(checkouts[name]), "wall_s": [round(w, 2) for w in walls],
                        "median_s": round(statistics.median(walls), 2),
                        "window_own_median_s": round(statistics.median(owns), 2) if owns else None}
        print(f"{name:<10} {', '.join(f'{w:.2f}' for w in walls):<44} {statistics.median(walls):>7.2f} "
              f"{result[name]['window_own_median_s'] or float('nan'):>11.2f}")
    if "other" in runs:
        result["ratio"] = round(result["this"]["median_s"] / result["other"]["median_s"], 2)
        print(f"ratio this/other: {result['ratio']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
