"""The `model` signal family: the trusted fair-value surface against the Heston-family model, z-scored against each
contract's own history, and tradable at the quotes — on a hand-built chain, with the model's values written by hand
and the edges recomputed with a hand Black-76."""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from chain_support import clean_chain, row, wide_settings, with_quotes
from workstation.config import SignalsConfig
from workstation.domain import Side
from workstation.strategy.calibrator import ModelValues
from workstation.strategy.fair_value import FairValueSurface
from workstation.strategy.signals import SignalModel
from workstation.strategy.surface import build_surface

FEE = 1.5                      # dollars per contract (commission + exchange fees)
HISTORY = 6                    # snapshots of agreement before the departure


def black(f, k, t, d, vol, call):
    """Black-76 price and vega per vol point, by hand."""
    s = vol * np.sqrt(t)
    d1 = np.log(f / k) / s + 0.5 * s
    c = d * (f * norm.cdf(d1) - k * norm.cdf(d1 - s))
    price = np.where(call, c, c - d * (f - k))
    return price, d * f * norm.pdf(d1) * np.sqrt(t) * 0.01


def model_values(surface, iv: np.ndarray) -> ModelValues:
    """A model whose implied vol per row is `iv` (its prices and vegas by hand)."""
    snap = surface.snapshot
    price, vega = black(surface.forward, snap.strike, surface.maturity, surface.discount, iv, snap.is_call)
    return ModelValues(None, surface, price, iv, vega)


def config() -> SignalsConfig:
    return SignalsConfig(min_history=4, history_length=20, max_expiry_days=365.0)


def scan_history(signals: SignalModel, snap, model_iv_of) -> list:
    """Scan `snap` HISTORY times with the model agreeing with the fair surface, then once with `model_iv_of(fair
    IV)`; returns (the last scan's candidates, surface, fair fit, model)."""
    settings = wide_settings()
    fv = FairValueSurface()
    surface = build_surface(snap, settings.market, settings.calibration)
    fair = fv.fit(surface)
    assert all(s.status == "ok" for s in fair.slices) and fair.trusted().sum() == len(fair.slices)
    for _ in range(HISTORY):
        assert signals.scan(surface, model_values(surface, fair.fair_iv), fair, FEE) == []
    model = model_values(surface, model_iv_of(fair.fair_iv))
    return signals.scan(surface, model, fair, FEE), surface, fair, model


def test_the_strike_where_the_surface_departs_from_the_model_signals_on_the_side_it_says():
    """The model misses the surface by 3 vol points at two strikes (too low at one: the surface is rich, sell;
    too high at the other: cheap, buy); exactly those two signal, each with its executable edge."""
    snap = clean_chain()
    rich = row(snap, "2025-03-21", 5700.0, False)          # out-of-the-money put
    cheap = row(snap, "2025-03-21", 6300.0, True)          # out-of-the-money call

    def departs(fair_iv):
        iv = fair_iv.copy()
        iv[rich] -= 0.03
        iv[cheap] += 0.03
        return iv
    signals = SignalModel(config())
    found, surface, fair, model = scan_history(signals, snap, departs)
    assert {(c.row, c.side) for c in found} == {(rich, Side.SELL), (cheap, Side.BUY)}
    for c in found:
        price, vega = black(surface.forward[c.row], snap.strike[c.row], surface.maturity[c.row],
                            surface.discount[c.row], model.iv[c.row], snap.is_call[c.row])
        edge = (snap.bid[c.row] - price if c.side is Side.SELL else price - snap.ask[c.row]) - FEE / 100.0
        assert c.family == "model" and c.model_price == float(price)
        assert math.isclose(c.edge, edge, rel_tol=1e-9) and math.isclose(c.edge_dollars, 100.0 * edge, rel_tol=1e-9)
        assert math.isclose(c.edge_vol, edge / vega, rel_tol=1e-9) and 2.0 < c.edge_vol < 3.5   # 3 vol pts less half-spread, fee
        assert (c.zscore > 0) == (c.side is Side.SELL) and abs(c.zscore) > 10
        assert math.isclose(signals.residual(c.contract_id), (fair.fair_iv[c.row] - model.iv[c.row]) * 100.0)
    assert math.isclose(signals.usual_residual(found[0].contract_id), 0.0, abs_tol=1e-9)


def test_a_quote_mispricing_alone_raises_no_model_signal():
    """One quote 1.5 vol points rich while the surface (which drops it as an outlier) agrees with the model: the
    quote pays against the model at the bid, but the model family measures the surface, so nothing signals."""
    snap = clean_chain()
    r = row(snap, "2025-03-21", 5800.0, False)
    settings = wide_settings()
    clean = FairValueSurface().fit(build_surface(snap, settings.market, settings.calibration))
    model_iv = clean.fair_iv.copy()                         # the model: where the clean surface is
    signals = SignalModel(config())
    for _ in range(HISTORY):
        surface = build_surface(snap, settings.market, settings.calibration)
        fair = FairValueSurface().fit(surface)
        assert signals.scan(surface, model_values(surface, model_iv), fair, FEE) == []
    bid, ask = snap.bid.copy(), snap.ask.copy()
    bid[r], ask[r] = bid[r] + 15.0, ask[r] + 15.0           # ~ 1.5 vol points rich
    surface = build_surface(with_quotes(snap, bid, ask), settings.market, settings.calibration)
    fair = FairValueSurface().fit(surface)
    model = model_values(surface, model_iv)
    assert bid[r] - model.price[r] > 10.0 and surface.iv_mid[r] - model.iv[r] > 0.01   # the quote pays, by far
    assert abs(fair.fair_iv[r] - model.iv[r]) < 0.001                                   # the surface does not move
    assert signals.scan(surface, model, fair, FEE) == []


def test_an_untrusted_or_missing_fair_slice_raises_no_model_signal():
    """The same departure as above, in an expiry whose fair slice is not trusted (a fallback, or inside too few of
    its spreads), or with no fair surface at all: that expiry never signals, and never falls back to the quote."""
    import dataclasses
    snap = clean_chain()
    rich = row(snap, "2025-03-21", 5700.0, False)
    other = row(snap, "2025-02-21", 5700.0, False)

    def departs(fair_iv):
        iv = fair_iv.copy()
        iv[rich] -= 0.03
        iv[other] -= 0.03
        return iv
    for spoil in (dict(status="fallback", reason="test"), dict(inside_pct=60.0)):
        signals = SignalModel(config())
        settings = wide_settings()
        surface = build_surface(snap, settings.market, settings.calibration)
        fair = FairValueSurface().fit(surface)
        slices = [dataclasses.replace(s, **spoil) if str(s.expiry) == "2025-03-21" else s for s in fair.slices]
        fair = dataclasses.replace(fair, slices=slices)
        for _ in range(HISTORY):
            signals.scan(surface, model_values(surface, fair.fair_iv), fair, FEE)
        found = signals.scan(surface, model_values(surface, departs(fair.fair_iv)), fair, FEE)
        assert [(c.row, c.side) for c in found] == [(other, Side.SELL)]          # only the trusted expiry
        assert math.isnan(signals.residual(int(snap.contract_id[rich])))
    signals = SignalModel(config())
    for _ in range(HISTORY + 1):
        assert signals.scan(surface, model_values(surface, departs(fair.fair_iv)), None, FEE) == []
