"""Fit quality of the Heston family on the real SPX chains: IV RMSE and fit time of heston, bates, heston_td.

Quotes: liquid out-of-the-money (bid >= 0.05, 7 d <= T <= 2 y, |K/F - 1| <= 0.2), PM (SPXW) series where an
expiry has both roots; forwards and discounts from put-call parity (the files' F_pcp, DF_pcp); fitted to mids.
Run: .venv/bin/python benchmarks/family_fit.py   (writes benchmarks/results/family_fit.json)
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation.pricing import FAST_CF_TOL  # noqa: E402
from workstation.pricing.models import MODELS, calibrate_model  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FTOL, MAX_IT = 1e-5, 100   # the engine's defaults (calibration.ftol, calibration.max_iterations)
CHAINS = ("spx_2022-06-10_cboe.csv", "spx_2025-10-01_cboe_longdated.csv")


def load_liquid_otm(path: Path, min_bid: float = 0.05, max_moneyness: float = 0.2):
    """(forward, strike, maturity, discount, is_call, mid) of the liquid OTM quotes of a Cboe chain file."""
    rows = list(csv.DictReader(path.open()))
    weekly = {r["expiry_or_T"] for r in rows if r["root"] == "SPXW"}
    out = []
    for r in rows:
        if r["root"] == "SPX" and r["expiry_or_T"] in weekly:
            continue
        f, k, t, d = float(r["F_pcp"]), float(r["strike"]), float(r["T_act365"]), float(r["DF_pcp"])
        bid, ask = float(r["bid"]), float(r["ask"])
        call = r["type"] == "C"
        if call != (k >= f) or abs(k / f - 1.0) > max_moneyness or not 7 / 365 <= t <= 2.0 + 1e-9:
            continue
        if bid < min_bid or ask < bid:
            continue
        out.append((f, k, t, d, call, 0.5 * (bid + ask)))
    a = np.array(out, dtype=float)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4].astype(bool), a[:, 5]


def main() -> None:
    results = {}
    for name in CHAINS:
        path = DATA / name
        if not path.exists():
            print(f"{name}: not available")
            continue
        quotes = load_liquid_otm(path)
        row = {"quotes": int(quotes[0].size), "expiries": int(np.unique(quotes[2]).size)}
        opts = dict(tol=FAST_CF_TOL, ftol=FTOL, max_iterations=MAX_IT)
        for model in MODELS:
            calibrate_model(model, *quotes, **opts)    # compile and warm caches
            cold = calibrate_model(model, *quotes, **opts)
            warm = calibrate_model(model, *quotes, initial=cold.params, **opts)
            row[model] = {"rmse_iv": cold.rmse_iv, "max_iv_error": cold.max_abs_iv_error,
                          "cold_ms": cold.elapsed_s * 1e3, "cold_iterations": cold.iterations,
                          "warm_ms": warm.elapsed_s * 1e3, "warm_iterations": warm.iterations,
                          "converged": cold.converged, "params": cold.params.as_dict(),
                          "per_expiry_rmse": {f"{t * 365:.0f}d": v for t, v in cold.per_expiry_rmse.items()}}
        results[name] = row
    header = "| chain | quotes / expiries | " + " | ".join(f"{m} RMSE (vp)" for m in MODELS) + \
             " | best / heston | " + " | ".join(f"{m} fit ms cold / warm" for m in MODELS) + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, row in results.items():
        rm = [row[m]["rmse_iv"] for m in MODELS]
        print(f"| {name} | {row['quotes']} / {row['expiries']} | " + " | ".join(f"{v:.3f}" for v in rm)
              + f" | {min(rm[1:]) / rm[0]:.2f} | "
              + " | ".join(f"{row[m]['cold_ms']:.0f} ({row[m]['cold_iterations']} it) / {row[m]['warm_ms']:.0f} "
                           f"({row[m]['warm_iterations']} it)" for m in MODELS) + " |")
    out = ROOT / "benchmarks" / "results" / "family_fit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
