"""`python main.py fit CHAIN --model surface|heston|bates|heston_td [--cv K] [--out FILE.csv] [--json FILE.json]`.

Fits the arbitrage-free fair-value surface (and, unless `--model surface`, a Heston-family model) to one chain:
a Cboe delayed-quotes CSV, or a recording (its last snapshot). Prints a summary; `--out` writes every input
quote with its fair and model values, `--json` the quality per model. `--cv K` measures out of sample: within
each expiry the fit quotes are split into K folds by strike rank, and each quote is valued by the fit made
without its fold. A file that cannot be read exits 2 with one line naming the problem.
"""
from __future__ import annotations

import csv
import logging
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from workstation.config import Settings
from workstation.domain import ChainSnapshot
from workstation.domain.snapshot import series_label
from workstation.pricing import models
from workstation.pricing import calibrate_heston, implied_vol
from workstation.strategy.calibrator import DEFAULT_START, evaluate_model, thin_evenly
from workstation.strategy.fair_value import FairValueFit, FairValueSurface, cv_folds, quote_metrics
from workstation.strategy.surface import Surface, build_surface

MODELS = ("surface", "heston", "bates", "heston_td")
EXIT_BAD_INPUT = 2
OUT_COLUMNS = ("fair_price", "fair_iv", "model_price", "model_iv", "in_fit")


class ChainError(ValueError):
    """The chain file cannot be used (one line saying why)."""


def read_chain(path: Path) -> tuple[ChainSnapshot, list[str], list[list[str]]]:
    """The snapshot to fit, and the input columns and rows to echo in `--out` (one per snapshot row)."""
    from workstation.market.replay import read_cboe_csv, read_recording
    path = Path(path)
    if not path.exists():
        raise ChainError(f"{path}: no such file or directory")
    try:
        if path.is_dir() or path.suffix.lower() == ".parquet":
            snaps = list(read_recording(path))
            if not snaps:
                raise ChainError(f"{path}: no snapshots (no *.parquet files)")
            snap = snaps[-1]
            header = ["contract_id", "trading_class", "expiry", "strike", "right", "bid", "ask", "am_settled"]
            rows = [[str(c), str(tc), str(x), repr(float(k)), "C" if call else "P", repr(float(b)), repr(float(a)),
                     str(int(am))]
                    for c, tc, x, k, call, b, a, am in zip(snap.contract_id, snap.trading_class, snap.expiry,
                                                           snap.strike, snap.is_call, snap.bid, snap.ask,
                                                           snap.am_settled)]
            return snap, header, rows
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = [r for r in reader if r]
        if not header:
            raise ChainError(f"{path}: empty file")
        if any(len(r) != len(header) for r in rows):
            bad = next(i for i, r in enumerate(rows) if len(r) != len(header))
            raise ChainError(f"{path}: line {bad + 2} has {len(rows[bad])} fields, the header {len(header)}")
        reader_log = logging.getLogger("workstation.market.replay")
        level = reader_log.level
        reader_log.setLevel(logging.ERROR)      # skipped rows are counted in the one line of an error
        try:
            snap = read_cboe_csv(path)
        finally:
            reader_log.setLevel(level)
    except ChainError:
        raise
    except (ValueError, KeyError, OSError, UnicodeDecodeError, csv.Error) as exc:
        text = " ".join(str(exc).split())
        raise ChainError(f"{path}: {text}" if str(path) not in text else text) from None
    except Exception as exc:   # e.g. pyarrow's errors on a corrupt Parquet file
        raise ChainError(f"{path}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    return snap, header, rows


def fit_surface_for(snap: ChainSnapshot, settings: Settings) -> Surface:
    """The Surface with the market filters of `settings`, over every listed expiry and strike (the fair-value
    window is the fit's own)."""
    market = settings.market.model_copy(update={"min_expiry_days": 0.0, "max_expiry_days": 3650.0,
                                                "strike_window": 1.0, "stale_after_s": 1e12})
    return build_surface(snap, market, settings.calibration)


@dataclasses.dataclass
class ModelFit:
    """One model's values on every row and its JSON entry."""

    price: np.ndarray
    iv: np.ndarray
    report: dict
    cv_price: np.ndarray | None = None     # out-of-sample values with --cv
    cv_iv: np.ndarray | None = None


def _params_json(params) -> object:
    """Model parameters as JSON: dataclass fields by name (nested ones too), arrays as lists."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {f.name: _params_json(getattr(params, f.name)) for f in dataclasses.fields(params)}
    if isinstance(params, (list, tuple, np.ndarray)):
        return [_params_json(v) for v in params]
    if isinstance(params, (bool, np.bool_)):
        return bool(params)
    if isinstance(params, (int, float, np.integer, np.floating)):
        return float(params)
    return params


def _surface_params(fit: FairValueFit, smoothing: float) -> dict:
    out = {"family": "natural cubic spline in total variance w(k), k = ln(K/F), linear wings",
           "smoothing": smoothing, "expiries": {}}
    for sl in fit.slices:
        label = series_label(sl.expiry, sl.am_settled)
        out["expiries"][label] = {
            "maturity": sl.maturity, "status": sl.status, "reason": sl.reason, "quotes": sl.quotes,
            "rmse_iv": _num(sl.rmse_iv), "inside_spread_pct": _num(sl.inside_pct),
            "knots_k": (sl.knots * sl.scale).tolist(), "total_variance": sl.values.tolist()}
    return out


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _metrics(surface: Surface, rows: np.ndarray, iv, price, cv_iv=None, cv_price=None) -> dict:
    m = quote_metrics(surface, rows, iv, price)
    out = {"rmse_iv": _num(m["rmse_iv"]), "inside_spread_pct": _num(m["inside_spread_pct"])}
    if cv_iv is not None:
        c = quote_metrics(surface, rows, cv_iv, cv_price)
        out.update(rmse_iv_cv=_num(c["rmse_iv"]), inside_spread_pct_cv=_num(c["inside_spread_pct"]))
    return out


def fit_fair_value(surface: Surface, cv: int | None) -> tuple[FairValueFit, ModelFit]:
    """The fair-value surface (cold, then timed again warm), its JSON entry, and its out-of-sample values."""
    fv = FairValueSurface()
    fit = fv.fit(surface)
    warm = fv.fit(surface, fit)
    report = {**_metrics(surface, fit.in_fit, fit.fair_iv, fit.fair_price),
              "arbitrage_violations": fit.arbitrage_violations, "butterfly_violations": fit.butterfly_violations,
              "calendar_violations": fit.calendar_violations, "fit_ms": round(fit.fit_ms, 2),
              "fit_ms_warm": round(warm.fit_ms, 2), "quotes_used": int(fit.in_fit.sum()),
              "params": _surface_params(fit, fv.settings.smoothing)}
    iv = price = None
    if cv:
        iv, price = fv.cross_validate(surface, fit, cv)
        report.update({k: v for k, v in _metrics(surface, fit.in_fit, fit.fair_iv, fit.fair_price, iv,
                                                  price).items() if k.endswith("_cv")})
    return fit, ModelFit(fit.fair_price, fit.fair_iv, report, price, iv)


def _calibrator(name: str, settings: Settings):
    """(calibrate(rows) -> (params, elapsed_s), price(params) -> per-row prices) for a Heston-family model."""
    if name == "heston":
        cal = settings.calibration

        def calibrate(surface: Surface, rows: np.ndarray):
            snap = surface.snapshot
            result = calibrate_heston(surface.forward[rows], snap.strike[rows], surface.maturity[rows],
                                      surface.discount[rows], snap.is_call[rows], snap.mid[rows],
                                      initial=DEFAULT_START, max_iterations=cal.max_iterations, ftol=cal.ftol,
                                      tol=cal.integration_tol)
            return result

        def price(surface: Surface, params) -> np.ndarray:
            return evaluate_model(params, surface, cal.integration_tol).price
        return calibrate, price
    def calibrate(surface: Surface, rows: np.ndarray):     # the interface agreed with pricing.models
        snap = surface.snapshot
        return models.calibrate_model(name, surface.forward[rows], snap.strike[rows], surface.maturity[rows],
                                      surface.discount[rows], snap.is_call[rows], snap.mid[rows])

    def price(surface: Surface, params) -> np.ndarray:
        snap = surface.snapshot
        out = np.full(len(snap), np.nan)
        ok = np.isfinite(surface.forward) & np.isfinite(surface.discount) & (surface.maturity > 0)
        out[ok] = models.price_model(name, params, surface.forward[ok], snap.strike[ok], surface.maturity[ok],
                                     surface.discount[ok], snap.is_call[ok])
        return out
    return calibrate, price


def fit_model(name: str, surface: Surface, fit_rows: np.ndarray, settings: Settings, cv: int | None,
              calibrate, price_of) -> ModelFit:
    """Calibrate `name` to the fit quotes (thinned to `calibration.max_quotes`), value every row, and measure."""
    snap = surface.snapshot
    rows = thin_evenly(np.flatnonzero(fit_rows), settings.calibration.max_quotes)
    started = time.perf_counter()
    result = calibrate(surface, rows)
    fit_ms = (time.perf_counter() - started) * 1e3
    price = price_of(surface, result.params)
    iv = implied_vol(price, surface.forward, snap.strike, surface.maturity, surface.discount, snap.is_call)
    cv_iv = cv_price = None
    if cv:
        fold = cv_folds(surface.expiry_index(), snap.strike, fit_rows, cv)
        cv_price, cv_iv = price.copy(), iv.copy()
        for f in range(cv):
            keep = rows[fold[rows] != f]
            part = price_of(surface, calibrate(surface, keep).params)
            out = fold == f
            cv_price[out] = part[out]
            cv_iv[out] = implied_vol(part[out], surface.forward[out], snap.strike[out], surface.maturity[out],
                                     surface.discount[out], snap.is_call[out])
    report = {**_metrics(surface, fit_rows, iv, price, cv_iv, cv_price),
              "arbitrage_violations": 0, "fit_ms": round(fit_ms, 2), "quotes_used": int(rows.size),
              "params": _params_json(result.params)}
    return ModelFit(price, iv, report, cv_price, cv_iv)


def write_out(path: Path, header: list[str], rows: list[list[str]], fair: ModelFit, model: ModelFit,
              in_fit: np.ndarray, fitted: np.ndarray) -> None:
    """Input columns plus fair and model values (blank outside the fitted expiries) and in_fit."""
    def cell(x: float, ok: bool) -> str:
        return repr(round(float(x), 8)) if ok and math.isfinite(x) else ""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*header, *OUT_COLUMNS])
        for i, r in enumerate(rows):
            ok = bool(fitted[i])
            w.writerow([*r, cell(fair.price[i], ok), cell(fair.iv[i], ok), cell(model.price[i], ok),
                        cell(model.iv[i], ok), int(in_fit[i])])


def run_fit(settings: Settings, args) -> int:
    name = args.model
    if args.cv is not None and args.cv < 2:
        print("error: --cv needs K >= 2", file=sys.stderr)
        return EXIT_BAD_INPUT
    model_fns = _calibrator(name, settings) if name != "surface" else None
    try:
        snap, header, rows = read_chain(args.chain)
    except ChainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    surface = fit_surface_for(snap, settings)
    fit, fair = fit_fair_value(surface, args.cv)
    if fit.in_fit.sum() == 0:
        print(f"error: {args.chain}: no liquid out-of-the-money quotes to fit", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = {"surface": fair.report}
    model = fair
    if model_fns is not None:
        model = fit_model(name, surface, fit.in_fit, settings, args.cv, *model_fns)
        report[name] = model.report
    fitted = fit.slice_of_row() >= 0
    for key, r in report.items():
        cv_text = (f"  cv: inside {r['inside_spread_pct_cv']}%, RMSE {r['rmse_iv_cv']} vp"
                   if "inside_spread_pct_cv" in r else "")
        print(f"{key:10s} inside {r['inside_spread_pct']}%  RMSE {r['rmse_iv']} vp  violations "
              f"{r['arbitrage_violations']}  {r['fit_ms']} ms  {r['quotes_used']} quotes{cv_text}")
    bad = [s for s in fit.slices if s.status != "ok"]
    for s in bad:
        print(f"  {s.expiry} {'AM' if s.am_settled else 'PM'}: {s.status} ({s.reason})")
    if args.out:
        shown = ModelFit(fair.cv_price, fair.cv_iv, {}) if fair.cv_price is not None else fair
        write_out(args.out, header, rows, shown, model, fit.in_fit, fitted)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
