"""Pricing benchmark: one table, measured in one run, against QuantLib; writes benchmarks/results/pricing.json.

Run: .venv/bin/python benchmarks/pricing.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_pricing_calibration import DATA, load_spx_otm, quantlib_calibrate  # noqa: E402

from workstation.pricing import (  # noqa: E402
    FAST_CF_TOL, BatesParams, HestonParams, TimeDependentHestonParams, black_price, calibrate_heston, family_price,
    heston_implied_vol, heston_price, implied_vol,
)

PARAMS = HestonParams(0.04, 2.0, 0.05, 1.0, -0.7)
BATES = BatesParams(0.04, 2.0, 0.05, 1.0, -0.7, 0.3, -0.1, 0.1)
HESTON_TD = TimeDependentHestonParams(0.04, 2.0, -0.7, (0.04, 0.05, 0.06, 0.05), (1.0, 0.9, 0.8, 0.7))


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def chain_2000():
    days = np.array([7, 14, 30, 60, 91, 182, 273, 365, 547, 730])
    t = np.repeat(days / 365.0, 200)
    z = np.tile(np.linspace(-4, 4, 200), 10)
    f = 100.0
    k = f * np.exp(z * 0.22 * np.sqrt(t))
    return f, k, t, np.exp(-0.03 * t), k >= f, np.repeat(days, 200)


def quantlib_chain_seconds(ql, f, k, t, d, call, days) -> tuple[float, np.ndarray]:
    today = ql.Date(1, 1, 2020)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.03, dc, ql.Continuous))
    process = ql.HestonProcess(curve, curve, ql.QuoteHandle(ql.SimpleQuote(f)), *PARAMS.as_array()[[0, 1, 2, 3, 4]])
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process))
    options = []
    for strike, n, c in zip(k, days, call):
        o = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, float(strike)),
                             ql.EuropeanExercise(today + int(n)))
        o.setPricingEngine(engine)
        options.append(o)
    t0 = time.perf_counter()
    prices = np.array([o.NPV() for o in options])
    return time.perf_counter() - t0, prices


def _time_options(ql, engine, today, k, days, call, quote, repeat: int = 3) -> tuple[float, np.ndarray]:
    """Best of `repeat` full passes (QuantLib caches an NPV until an input changes: the spot quote is moved and
    moved back before each pass, which marks every option for recalculation)."""
    options = []
    for strike, n, c in zip(k, days, call):
        o = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, float(strike)),
                             ql.EuropeanExercise(today + int(n)))
        o.setPricingEngine(engine)
        options.append(o)
    best = np.inf
    for _ in range(repeat):
        value = quote.value()
        quote.setValue(value * (1.0 + 1e-12))
        quote.setValue(value)
        t0 = time.perf_counter()
        prices = np.array([o.NPV() for o in options])
        best = min(best, time.perf_counter() - t0)
    return best, prices


def quantlib_family_seconds(ql, params, f, k, call, days) -> tuple[float, np.ndarray]:
    """QuantLib's BatesEngine / AnalyticPTDHestonEngine (Gauss-Laguerre 144, their defaults) on the same chain,
    best of 3 passes (ours is best of 20: on a loaded machine a single pass would flatter the ratio)."""
    today = ql.Date(1, 1, 2020)
    ql.Settings.instance().evaluationDate = today
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.03, ql.Actual365Fixed(), ql.Continuous))
    quote = ql.SimpleQuote(f)
    spot = ql.QuoteHandle(quote)
    if isinstance(params, BatesParams):
        engine = ql.BatesEngine(ql.BatesModel(ql.BatesProcess(curve, curve, spot, *params.as_array())))
    else:
        ends = list(params.bucket_ends)

        def piecewise(values):
            par = ql.PiecewiseConstantParameter(ends, ql.NoConstraint())
            for i, v in enumerate(values):
                par.setParam(i, v)
            return par

        grid = ql.TimeGrid(sorted(set(ends + [float(n) / 365.0 for n in np.unique(days)])))
        model = ql.PiecewiseTimeDependentHestonModel(
            curve, curve, spot, params.v0, piecewise(params.theta),
            ql.ConstantParameter(params.kappa, ql.NoConstraint()), piecewise(params.sigma),
            ql.ConstantParameter(params.rho, ql.NoConstraint()), grid)
        engine = ql.AnalyticPTDHestonEngine(model)
    return _time_options(ql, engine, today, k, days, call, quote)


def synthetic_200():
    true = HestonParams(0.08, 3.0, 0.10, 0.25, -0.8)
    days = np.array([30, 60, 91, 182, 273, 365, 547, 730, 1095, 1460])
    t = np.repeat(days / 365.0, 20)
    f = 100 * np.exp(0.02 * t)
    d = np.exp(-0.02 * t)
    k = f * np.exp(np.tile(np.linspace(-2, 2, 20), 10) * 0.3 * np.sqrt(t))
    call = k >= f
    return true, f, k, t, d, call, heston_price(true, f, k, t, d, call)


FIRST_CALL = """
import time; t0 = time.perf_counter()
import numpy as np
from workstation.pricing import HestonParams, heston_price, implied_vol, calibrate_heston
p = heston_price(HestonParams(0.04, 2.0, 0.05, 1.0, -0.7), 100.0, np.array([90.0, 100.0, 110.0]), 0.5, 1.0, True)
implied_vol(p, 100.0, np.array([90.0, 100.0, 110.0]), 0.5, 1.0, True)
calibrate_heston(100.0, np.linspace(80, 120, 10), 0.5, 1.0, True, heston_price(HestonParams(0.04, 2.0, 0.05, 1.0, -0.7), 100.0, np.linspace(80, 120, 10), 0.5, 1.0, True))
print(time.perf_counter() - t0)
"""


def main() -> None:
    import QuantLib as ql

    results: dict[str, dict] = {}
    # 1. heston_price on 2,000 options
    f, k, t, d, call, days = chain_2000()
    heston_price(PARAMS, f, k, t, d, call)
    ours = best_of(lambda: heston_price(PARAMS, f, k, t, d, call), 20) / k.size * 1e6
    ql_s, ql_prices = quantlib_chain_seconds(ql, f, k, t, d, call, days)
    ql_us = ql_s / k.size * 1e6
    max_diff = float(np.max(np.abs(heston_price(PARAMS, f, k, t, d, call) - ql_prices)))
    results["heston_price"] = {"us_per_option": ours, "quantlib_us_per_option": ql_us, "speedup": ql_us / ours,
                               "max_abs_diff_vs_quantlib": max_diff}
    # the same at the engine's truncation (issue 23 states its target at 1e-8 accuracy)
    reference = heston_price(PARAMS, f, k, t, d, call)
    fast = best_of(lambda: heston_price(PARAMS, f, k, t, d, call, FAST_CF_TOL), 20) / k.size * 1e6
    results["heston_price_engine_tol"] = {
        "us_per_option": fast, "tol": FAST_CF_TOL, "speedup": ql_us / fast,
        "max_abs_diff_vs_reference": float(np.max(np.abs(heston_price(PARAMS, f, k, t, d, call, FAST_CF_TOL)
                                                          - reference)))}
    # 1b. the family on the same chain, each against its QuantLib engine
    for key, params in (("bates_price", BATES), ("heston_td_price", HESTON_TD)):
        family_price(params, f, k, t, d, call)
        ours_f = best_of(lambda: family_price(params, f, k, t, d, call), 20) / k.size * 1e6
        ql_f_s, ql_f_prices = quantlib_family_seconds(ql, params, f, k, call, days)
        ql_f_us = ql_f_s / k.size * 1e6
        results[key] = {"us_per_option": ours_f, "quantlib_us_per_option": ql_f_us, "speedup": ql_f_us / ours_f,
                        "max_abs_diff_vs_quantlib": float(np.max(np.abs(family_price(params, f, k, t, d, call)
                                                                        - ql_f_prices)))}
    # 2. implied vol on 1e6 prices
    rng = np.random.default_rng(1)
    n = 1_000_000
    vol = rng.uniform(0.01, 3.0, n)
    tt = np.exp(rng.uniform(np.log(1 / 365), np.log(10), n))
    kk = 100.0 * np.exp(rng.uniform(-6, 6, n) * vol * np.sqrt(tt))
    cc = kk >= 100.0
    prices = black_price(100.0, kk, tt, 1.0, vol, cc)
    implied_vol(prices[:10], 100.0, kk[:10], tt[:10], 1.0, cc[:10])
    iv_runs = []
    for _ in range(7):  # min and median: the shared machine makes single runs noisy
        t0 = time.perf_counter()
        implied_vol(prices, 100.0, kk, tt, 1.0, cc)
        iv_runs.append(time.perf_counter() - t0)
    iv_err = float(np.nanmax(np.abs(implied_vol(prices, 100.0, kk, tt, 1.0, cc) - vol)))
    # the engine's call: the 2,000-option chain above, priced at 22% vol
    pc = black_price(f, k, t, d, 0.22, call)
    chain_s = best_of(lambda: implied_vol(pc, f, k, t, d, call), 50)
    results["implied_vol"] = {"ns_per_option": min(iv_runs) / n * 1e9,
                              "median_ns_per_option": float(np.median(iv_runs)) / n * 1e9,
                              "max_abs_error": iv_err, "n": n, "chain_2000_us_per_call": chain_s * 1e6}
    # 3. calibration on 200 synthetic quotes
    true, f2, k2, t2, d2, c2, p2 = synthetic_200()
    poor = HestonParams(0.2, 1.2, 0.2, 0.3, -0.6)
    calibrate_heston(f2, k2, t2, d2, c2, p2, initial=poor)
    cold = min((calibrate_heston(f2, k2, t2, d2, c2, p2, initial=poor) for _ in range(5)), key=lambda r: r.elapsed_s)
    near = HestonParams(0.081, 2.95, 0.101, 0.255, -0.79)
    warm = min((calibrate_heston(f2, k2, t2, d2, c2, p2, initial=near) for _ in range(5)), key=lambda r: r.elapsed_s)
    iv2 = implied_vol(p2, f2, k2, t2, d2, c2)
    t0 = time.perf_counter()
    ql_syn = quantlib_calibrate(ql, f2, k2, t2, d2, iv2, poor.as_array())
    ql_syn_s = time.perf_counter() - t0
    results["calibrate_synthetic_200"] = {
        "cold_ms": cold.elapsed_s * 1e3, "cold_iterations": cold.iterations,
        "warm_ms": warm.elapsed_s * 1e3, "warm_iterations": warm.iterations,
        "quantlib_ms": ql_syn_s * 1e3, "speedup_cold": ql_syn_s / cold.elapsed_s,
        "max_rel_param_error": float(np.max(np.abs(cold.params.as_array() / true.as_array() - 1))),
        "quantlib_max_rel_param_error": float(np.max(np.abs(ql_syn.as_array() / true.as_array() - 1))),
    }
    # 4. real chain
    if DATA.exists():
        fr, kr, tr, dr, cr, mr = load_spx_otm(DATA)
        calibrate_heston(fr, kr, tr, dr, cr, mr)
        real = min((calibrate_heston(fr, kr, tr, dr, cr, mr) for _ in range(3)), key=lambda r: r.elapsed_s)
        real_warm = calibrate_heston(fr, kr, tr, dr, cr, mr, initial=real.params)
        ivr = implied_vol(mr, fr, kr, tr, dr, cr)
        t0 = time.perf_counter()
        ql_real = quantlib_calibrate(ql, fr, kr, tr, dr, ivr, (0.06, 2.0, 0.06, 1.0, -0.7))
        ql_real_s = time.perf_counter() - t0
        ql_rmse = float(np.sqrt(np.nanmean((heston_implied_vol(ql_real, fr, kr, tr, dr, cr) - ivr) ** 2)) * 100)
        results["calibrate_real_chain"] = {
            "quotes": int(kr.size), "expiries": int(np.unique(tr).size), "ms": real.elapsed_s * 1e3,
            "iterations": real.iterations, "warm_ms": real_warm.elapsed_s * 1e3, "rmse_iv_volpts": real.rmse_iv,
            "quantlib_ms": ql_real_s * 1e3, "quantlib_rmse_iv_volpts": ql_rmse, "converged": real.converged,
        }
    # 5. first call in a fresh process (numba cache warm)
    cmd = [sys.executable, "-c", FIRST_CALL]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)  # make sure the cache is warm
    first = min(float(subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip())
                for _ in range(3))
    results["first_call"] = {"seconds_including_import": first}

    h, s, c = results["heston_price"], results["implied_vol"], results["calibrate_synthetic_200"]
    rows = [
        ("heston_price, 2,000 options (10 exp x 200 K)", f"{h['us_per_option']:.3f} us/option",
         f"{h['quantlib_us_per_option']:.1f} us/option", f"{h['speedup']:.0f}x", "<= 0.5 us, >= 50x"),
        ("heston_price, same, engine tolerance", f"{results['heston_price_engine_tol']['us_per_option']:.3f} us/option, "
         f"max diff to reference {results['heston_price_engine_tol']['max_abs_diff_vs_reference']:.0e}", "-",
         f"{results['heston_price_engine_tol']['speedup']:.0f}x", "<= 0.2 us at 1e-8, >= 250x"),
        *((f"{name}, same 2,000 options", f"{results[key]['us_per_option']:.3f} us/option, "
           f"max diff {results[key]['max_abs_diff_vs_quantlib']:.0e}",
           f"{results[key]['quantlib_us_per_option']:.1f} us/option ({engine})", f"{results[key]['speedup']:.0f}x", "-")
          for name, key, engine in (("bates price", "bates_price", "BatesEngine"),
                                    ("heston_td price", "heston_td_price", "AnalyticPTDHestonEngine"))),
        ("implied_vol, 1e6 prices", f"{s['ns_per_option']:.0f} ns/option (median {s['median_ns_per_option']:.0f}), "
         f"max err {s['max_abs_error']:.1e}; 2,000-option call {s['chain_2000_us_per_call']:.0f} us", "-", "-",
         "<= 100 ns, 1e-10"),
        ("calibrate 200 synthetic, cold", f"{c['cold_ms']:.1f} ms ({c['cold_iterations']} it)", f"{c['quantlib_ms']:.0f} ms",
         f"{c['speedup_cold']:.0f}x", "<= 20 ms, >= 15x"),
        ("calibrate 200 synthetic, warm", f"{c['warm_ms']:.1f} ms ({c['warm_iterations']} it)", "-",
         f"{c['quantlib_ms'] / c['warm_ms']:.0f}x", "<= 5 ms"),
    ]
    if "calibrate_real_chain" in results:
        r = results["calibrate_real_chain"]
        rows.append((f"real SPX 2022-06-10, {r['quotes']} quotes / {r['expiries']} exp",
                     f"{r['ms']:.0f} ms, RMSE {r['rmse_iv_volpts']:.3f} vp", f"{r['quantlib_ms']:.0f} ms, RMSE {r['quantlib_rmse_iv_volpts']:.3f} vp",
                     f"{r['quantlib_ms'] / r['ms']:.0f}x", "<= 250 ms, RMSE <= QL"))
        rows.append(("real SPX, warm start", f"{r['warm_ms']:.0f} ms", "-", "-", "-"))
    rows.append(("first call, fresh process, warm cache", f"{first:.2f} s incl. import", "-", "-", "<= 1 s"))
    header = ("benchmark", "ours", "QuantLib", "ratio", "target")
    widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(5)]
    line = lambda cells: "| " + " | ".join(str(cv).ljust(w) for cv, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    out = ROOT / "benchmarks" / "results" / "pricing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
