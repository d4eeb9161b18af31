"""Typed settings: built-in defaults < YAML file < user overrides file < environment (secrets only).

Every section is a pydantic model with documented fields; unknown keys are errors (they are usually typos).
A bad file or value raises `ConfigError`, whose `.problems` are one line per problem naming the field
path, the value and the rule, e.g. ``risk.max_daily_loss: must be > 0, got -5``.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

# Environment variables that carry secrets. They are never read from or written to YAML.
ENV_SECRETS = {
    "HESTON_IB_ACCOUNT": ("ib", "account"),
    "HESTON_SMTP_PASSWORD": ("alerts", "email", "password"),
    "HESTON_WEBHOOK_URL": ("alerts", "webhook", "url"),
}
SECRET_PATHS = {path for path in ENV_SECRETS.values()}


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated, and no number may be
    NaN or infinite (one rule for every float, nested lists included)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


# ----------------------------------------------------------------------------------------- market
class SimulatorConfig(Section):
    """The built-in simulated SPX/XSP market."""

    seed: int = Field(7, ge=0, le=2**32 - 1, description="Random seed: the same seed gives the same market.")
    speed: float = Field(1.0, gt=0, le=10_000, description="Simulated seconds per wall-clock second.")
    always_open: bool = Field(False, description="Ignore the 09:30-16:00 ET session (demo mode).")
    start: Literal["open", "now"] = Field("open", description="Start the simulated day at the session open, "
                                          "or at the current wall-clock time.")
    start_date: date | None = Field(None, description="Simulated trade date (default: the last weekday).")
    spot: float = Field(5900.0, gt=0, le=1_000_000, description="SPX level at the start.")
    rate: float = Field(0.04, ge=-0.05, le=0.25, description="Continuously compounded risk-free rate.")
    dividend_yield: float = Field(0.013, ge=0, le=0.2, description="Continuous dividend yield of the index.")
    v0: float = Field(0.02, gt=0, le=4, description="Heston initial variance of the index.")
    kappa: float = Field(2.5, gt=0, le=50, description="Heston mean-reversion speed.")
    theta: float = Field(0.035, gt=0, le=4, description="Heston long-run variance.")
    sigma: float = Field(0.6, gt=0, le=5, description="Heston vol of variance.")
    rho: float = Field(-0.75, gt=-1, lt=1, description="Spot/variance correlation.")
    max_expiry_days: int = Field(400, ge=30, le=1200, description="Longest listed expiry, calendar days.")
    underlyings: list[Literal["SPX", "XSP"]] = Field(["SPX"], min_length=1,
                                                     description="Index chains the simulator lists.")
    listing: Literal["standard", "full"] = Field("standard", description="standard: a ~2,000-option chain "
                                                 "(dailies two weeks out, Fridays six weeks, month-ends and "
                                                 "quarterlies); full: the real-size SPX chain (dailies six weeks "
                                                 "out, every Friday to a year, month-ends, quarterlies and "
                                                 "monthlies to max_expiry_days, 5-point strikes over a wide band).")
    min_wall_interval_s: float = Field(0.5, gt=0, le=60, description="Fastest snapshot pace in wall-clock "
                                       "seconds: snapshots come every market.snapshot_interval_s of simulated "
                                       "time, compressed by speed, but never faster than this.")
    mispricing_rate: float = Field(0.02, ge=0, le=10, description="New mispricings per simulated second.")
    mispricing_size_vol: float = Field(0.03, ge=0, le=0.5,
                                       description="Typical size of a mispricing, in vol (0.03 = 3 points), before "
                                                   "the cap at mispricing_max_spreads.")
    mispricing_half_life_s: float = Field(600.0, gt=0, le=1e7,
                                          description="Half-life of a mispricing, simulated seconds.")
    mispricing_max_spreads: float = Field(0.5, ge=0, le=1000, description="Largest price displacement of a "
                                          "mispricing, in the option's own bid-ask spreads. Below 1 a mispriced "
                                          "strike makes no static arbitrage against its neighbours, as on a real "
                                          "SPX chain; above it the simulator quotes arbitrage.")


class SanityConfig(Section):
    """Data sanity before anything acts: a quote, index or future that jumped or disagrees with the options'
    own forwards is unusable for signals, hedges and marks; a snapshot that fails as a whole is skipped."""

    max_iv_jump: float = Field(0.10, gt=0, le=1.0, description="Largest change of a quote's mid implied vol "
                               "from its last good value (0.10 = 10 vol points), plus twice the index's move.")
    max_bad_share: float = Field(0.25, gt=0, le=1.0, description="A snapshot in which more than this share of "
                                 "the quotes jumped is skipped as a whole (alert DATA_REJECTED).")
    max_usable_drop: float = Field(0.5, gt=0, le=1.0, description="A snapshot whose usable quotes fell by "
                                   "more than this share from the last good snapshot is skipped as a whole.")
    max_index_basis: float = Field(0.03, gt=0, le=0.5, description="Largest gap between the index and the "
                                   "nearest expiry's parity forward (fraction); beyond it the snapshot is skipped.")
    max_future_basis: float = Field(0.03, gt=0, le=0.5, description="Largest gap between the hedge future and "
                                    "the options' forward nearest its expiry (fraction); beyond it the future "
                                    "quote is unusable (no hedge, no mark).")
    confirm_snapshots: int = Field(3, ge=1, le=100, description="A new level seen this many snapshots in a row "
                                   "is accepted as the market's (a real jump, not a bad print).")


class MarketConfig(Section):
    """Where quotes come from and which part of the chain we watch."""

    source: Literal["sim", "ib", "replay"] = Field("sim", description="Market data feed.")
    underlying: Literal["SPX", "XSP"] = Field("SPX", description="Index whose options we trade.")
    snapshot_interval_s: float = Field(5.0, gt=0, le=3600, description="Seconds of market time between chain "
                                       "snapshots (the simulator compresses them by its speed).")
    min_expiry_days: float = Field(0.0, ge=0, le=3650, description="Shortest expiry to request, calendar days.")
    max_expiry_days: float = Field(400.0, gt=0, le=3650, description="Longest expiry to request, calendar days.")
    strike_window: float = Field(0.25, gt=0, le=1.0, description="Strikes within +-this fraction of spot.")
    stale_after_s: float = Field(30.0, gt=0, le=86_400,
                                 description="Data older than this is stale (alert, no trading).")
    max_rel_spread: float = Field(0.5, gt=0, le=10, description="Quotes wider than this fraction of mid are unusable.")
    replay_path: Path | None = Field(None, description="Recording directory or Cboe CSV for source=replay.")
    replay_speed: float = Field(0.0, ge=0, le=10_000,
                                description="Replay pace: 1 = as recorded, 0 = as fast as possible.")
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    sanity: SanityConfig = Field(default_factory=SanityConfig)


# ------------------------------------------------------------------------------------ calibration
class CalibrationConfig(Section):
    """Which model is fitted, which quotes the fit uses and when a fit is rejected."""

    enabled: bool = Field(True, description="Fit the model every snapshot.")
    model: Literal["heston", "bates", "heston_td"] = Field(
        "bates", description="Heston-family model fitted to the chain and used for fair value, Greeks, hedging, "
        "stress and VaR: heston, bates (Heston + lognormal jumps: the short-dated skew) or heston_td (theta and "
        "sigma per maturity bucket). Bates fits the real SPX chains best (docs/pricing.md).")
    min_expiry_days: float = Field(7.0, ge=0, le=3650, description="Shortest expiry in the fit, calendar days.")
    max_expiry_days: float = Field(730.0, gt=0, le=3650, description="Longest expiry in the fit, calendar days.")
    min_moneyness: float = Field(0.7, gt=0, le=10, description="Lowest K/F in the fit.")
    max_moneyness: float = Field(1.3, gt=0, le=10, description="Highest K/F in the fit.")
    max_rel_spread: float = Field(0.2, gt=0, le=10, description="Largest (ask-bid)/mid of a quote in the fit.")
    min_bid: float = Field(0.5, ge=0, le=10_000, description="Smallest bid of a quote in the fit, index points.")
    otm_only: bool = Field(True, description="Use out-of-the-money options only (puts below F, calls above).")
    max_quotes: int = Field(2000, ge=10, le=100_000, description="Cap on quotes per fit (thinned evenly per expiry).")
    max_expiries: int = Field(20, ge=1, le=1000, description="Cap on expiries per fit: every k-th in maturity "
                              "order with the first and the last (the model's error is still shown for every "
                              "expiry).")
    worse_factor: float = Field(2.0, gt=1, le=1000, description="A fit whose RMSE exceeds the last good one by this "
                                "factor is rejected (the last good parameters are kept).")
    max_rmse_iv: float = Field(5.0, gt=0, le=100, description="A fit with IV RMSE above this (vol points) is rejected.")
    rmse_floor: float = Field(0.5, gt=0, le=100, description="'Much worse' is judged against at least this RMSE "
                              "(vol points), so a lucky near-perfect fit does not lock the model.")
    max_rejections: int = Field(5, ge=1, le=1000, description="After this many 'much worse' fits in a row the new "
                                "level is accepted (the market changed, or the last good fit saw a partial chain).")
    max_iterations: int = Field(100, ge=1, le=10_000, description="Levenberg-Marquardt iteration cap.")
    ftol: float = Field(1e-5, gt=0, lt=1, description="Stop when a step lowers the squared IV error by less "
                        "than this fraction (quote noise dwarfs what further iterations gain).")
    integration_tol: float = Field(1e-9, ge=1e-15, le=1e-6, description="Where the Heston pricing integral is "
                                   "truncated in the fit and the model values (1e-13 is reference accuracy and "
                                   "~25% slower; 1e-9 stays within 1e-10 of the forward of it, far below a tick).")
    timeout_s: float = Field(2.0, gt=0, le=600, description="A fit slower than this raises a slow-fit alert.")


# ---------------------------------------------------------------------------------------- signals
class SignalsConfig(Section):
    """Mispricing thresholds, persistence, sizing, auto-execution and exits."""

    min_edge_vol: float = Field(0.5, ge=0, le=100, description="Minimum edge in vol points (edge >= this x vega).")
    spread_multiple: float = Field(1.0, ge=0, le=100, description="Minimum edge as a multiple of the half-spread.")
    min_edge_dollars: float = Field(20.0, ge=0, le=1e6, description="Minimum edge per contract, dollars.")
    min_zscore: float = Field(2.0, ge=0, le=100, description="Minimum |z| of the IV residual vs its own history.")
    history_length: int = Field(60, ge=3, le=10_000, description="Snapshots of residual history per contract.")
    min_history: int = Field(8, ge=2, le=10_000, description="Snapshots needed before a contract can signal.")
    min_vega: float = Field(0.5, ge=0, le=1e6, description="Minimum vega per contract, dollars per vol point.")
    min_size: int = Field(1, ge=0, le=1_000_000, description="Minimum displayed size on the side we trade.")
    min_expiry_days: float = Field(1.0, ge=0, le=3650, description="Shortest expiry that may signal, days.")
    max_expiry_days: float = Field(180.0, gt=0, le=3650, description="Longest expiry that may signal, days.")
    max_age_s: float = Field(60.0, gt=0, le=86_400, description="A signal not acted on within this expires.")
    cooldown_s: float = Field(120.0, ge=0, le=604_800, description="After a signal closes, the same contract and side "
                              "may not signal again for this long (market seconds).")
    max_open_signals: int = Field(50, ge=1, le=10_000, description="Most signals shown at once (best edge first).")
    base_quantity: int = Field(1, ge=1, le=10_000, description="Contracts per signal before scaling by edge.")
    max_quantity: int = Field(10, ge=1, le=10_000, description="Largest suggested size of one signal.")
    auto_execute: bool = Field(False, description="Approve NEW signals within the auto limits automatically.")
    auto_max_quantity: int = Field(5, ge=1, le=10_000, description="Auto-execute only signals up to this size.")
    auto_max_premium: float = Field(20_000.0, gt=0, le=1e8,
                                    description="Auto-execute only orders up to this premium, $.")
    exit_converged_vol: float = Field(0.2, ge=0, le=100,
                                      description="Close when the residual is back within this, vol pts.")
    stop_loss_dollars: float = Field(2_000.0, gt=0, le=1e9, description="Close a position losing more than this, $.")
    time_stop_minutes: float = Field(240.0, gt=0, le=576_000, description="Close a position held longer than this.")
    close_days_before_expiry: float = Field(1.0, ge=0, le=365,
                                            description="Close positions this many days before expiry.")
    families: list[Literal["model", "relative", "arbitrage"]] = Field(
        default_factory=lambda: ["model", "relative", "arbitrage"],
        description="Signal families scanned: model (the trusted fair-value surface vs the fitted model, "
                    "confirmed by its residual's history, traded at the quotes), relative (quote vs the arbitrage-free fair-value surface beyond fees and the "
                    "surface's own uncertainty), arbitrage (static arbitrage in the quotes themselves, shown "
                    "and alerted; verticals and even butterflies tradable as one combo).")
    relative_uncertainty: float = Field(2.0, ge=0, le=100, description="A relative edge must beat this multiple of "
                                        "the surface's cross-validated error at the strike (x vega).")
    relative_persist: int = Field(2, ge=1, le=1_000, description="Snapshots in a row a relative edge must last.")
    relative_cv_every: int = Field(20, ge=1, le=100_000, description="Snapshots between cross-validations of the "
                                   "fair surface (its uncertainty per expiry).")
    structures: Literal["none", "vertical", "calendar", "neutral", "best"] = Field(
        "best", description="Propose each model/relative signal as a package too: the vertical against the nearest "
                            "liquid strike of its expiry, the calendar against the same strike in the next expiry, "
                            "the neutral package (two out-of-the-money options of its expiry in whole ratios that "
                            "leave at most a quarter of its delta and vega), or the best of all (by package edge, "
                            "only when it holds less delta and vega than the naked option); none: single options "
                            "only. A proposal sends nothing by itself.")
    structure_max_strikes: int = Field(3, ge=1, le=50, description="The vertical's hedge leg: the nearest liquid "
                                       "strike at most this many listed strikes away.")
    auto_execute_packages: bool = Field(False, description="Auto-execution may send packages: a signal's proposed "
                                        "structure (instead of the naked option) and static arbitrage packages, "
                                        "within the auto limits and every pre-trade check on the package.")


# ------------------------------------------------------------------------------------------- risk
class BucketLimit(Section):
    """|Dollar Greeks| limits of one expiry bucket (empty: no limit)."""

    delta: float | None = Field(None, gt=0, le=1e10, description="|delta$| limit of the bucket.")
    gamma: float | None = Field(None, gt=0, le=1e10, description="|gamma$| limit of the bucket.")
    vega: float | None = Field(None, gt=0, le=1e10, description="|vega$| limit of the bucket.")
    theta: float | None = Field(None, gt=0, le=1e10, description="|theta$| limit of the bucket.")


class BucketLimits(Section):
    """Greek limits per expiry bucket (calendar days to expiry), checked pre-trade like the portfolio limits."""

    upto_7d: BucketLimit = Field(default_factory=BucketLimit, description="Expiries within 7 days (<=7d).")
    d8_30: BucketLimit = Field(default_factory=BucketLimit, description="8 to 30 days (8-30d).")
    d31_90: BucketLimit = Field(default_factory=BucketLimit, description="31 to 90 days (31-90d).")
    d91_365: BucketLimit = Field(default_factory=BucketLimit, description="91 to 365 days (91-365d).")
    over_1y: BucketLimit = Field(default_factory=BucketLimit, description="Beyond a year (>1y).")


class RiskConfig(Section):
    """Hard pre-trade limits and portfolio limits. Every order, hedges included, is checked."""

    max_order_quantity: int = Field(20, ge=1, le=10_000, description="Largest order, contracts.")
    max_order_premium: float = Field(50_000.0, gt=0, le=1e8, description="Largest premium of one order, $.")
    max_position: int = Field(50, ge=1, le=100_000, description="Largest |position| in one contract.")
    max_total_contracts: int = Field(500, ge=1, le=1_000_000,
                                     description="Largest sum of |positions| over all options.")
    max_open_orders: int = Field(20, ge=1, le=1000, description="Most working orders at once.")
    max_orders_per_minute: int = Field(30, ge=1, le=1000, description="Order-rate throttle.")
    price_band: float = Field(0.25, gt=0, le=1, description="Fat finger: limit within this fraction of mid/model.")
    price_band_min: float = Field(0.5, ge=0, le=100, description="...or within this many points, whichever is wider.")
    duplicate_window_s: float = Field(2.0, ge=0, le=3600,
                                      description="Same contract/side/qty within this is a duplicate.")
    max_daily_loss: float = Field(25_000.0, gt=0, le=1e9, description="Daily loss limit, $ (breach halts trading).")
    max_delta_dollars: float = Field(500_000.0, gt=0, le=1e10, description="|Portfolio delta$| limit: $ P&L of a 1% "
                                     "move of the forward (delta x F x 1% x multiplier x qty).")
    max_gamma_dollars: float = Field(50_000.0, gt=0, le=1e10, description="|Portfolio gamma$| limit: change of delta$ "
                                     "for a 1% move (gamma x (1% F)^2 x multiplier x qty).")
    max_vega_dollars: float = Field(50_000.0, gt=0, le=1e10,
                                    description="|Portfolio vega$| limit: $ P&L of +1 vol point.")
    max_var_99: float = Field(100_000.0, gt=0, le=1e10, description="1-day 99% VaR limit, $.")
    daily_loss_action: Literal["HALTED", "REDUCING"] = Field("HALTED", description="State after a daily-loss breach.")
    limit_breach_action: Literal["REDUCING", "HALTED", "NONE"] = Field(
        "REDUCING", description="State after a Greek or VaR limit breach.")
    auto_resume_limits: bool = Field(True, description="Lift a Greek/VaR breach state by itself once every "
                                     "Greek and VaR limit is back inside (else the trader resumes).")
    restricted_underlyings: list[str] = Field(default_factory=list, description="Underlyings we must not trade.")
    restricted_expiries: list[date] = Field(default_factory=list, description="Expiry dates we must not trade.")
    restricted_strikes: list[Annotated[float, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=list, description="Strikes we must not trade.")
    min_days_to_expiry: float = Field(0.5, ge=0, le=365,
                                      description="No options closer to expiry than this (0-day guard).")
    max_combo_legs: int = Field(4, ge=2, le=8, description="Most legs in one combo order (MAX_LEGS).")
    max_combo_loss: float = Field(25_000.0, gt=0, le=1e9, description="Largest max loss at expiry of one combo "
                                  "order, $ (an unbounded loss is always denied).")
    allow_uncovered_shorts: bool = Field(False, description="Allow net short options not covered by longs.")
    buying_power: float = Field(1_000_000.0, gt=0, le=1e11, description="Account buying power for the margin check, $.")
    future_margin_rate: float = Field(0.06, gt=0, le=1, description="Margin of a future as a fraction of its "
                                      "notional (a stand-in for SPAN) in the Reg-T style estimate.")
    var_scenarios: int = Field(2000, ge=100, le=100_000, description="Simulated 1-day Heston scenarios for VaR.")
    var_seed: int = Field(11, ge=0, le=2**32 - 1, description="Random seed of the VaR scenarios (same book, same VaR).")
    var_interval_s: float = Field(30.0, ge=0, le=86_400,
                                  description="Market seconds between full revaluations (VaR, stress "
                                  "grid) of an unchanged book; a trade triggers one at once. Greeks, daily loss "
                                  "and the last VaR are checked every cycle. 0: every cycle.")
    retry_denied_s: float = Field(30.0, ge=0, le=86_400, description="An exit or hedge the checks denied is retried "
                                  "after this long, not every cycle.")
    enforce_trading_hours: bool = Field(True, description="Deny orders outside the contract's trading hours.")
    bucket_limits: BucketLimits = Field(default_factory=BucketLimits, description="|Greek| limits per expiry "
                                        "bucket, checked pre-trade (risk by expiry).")
    greeks_from: Literal["market", "model"] = Field(
        "market", description="Vol convention of every risk number (position and portfolio Greeks, stress grid, "
        "VaR, the what-if): market = each option's own market mid IV (Black-76); model = the fitted Heston model.")


# -------------------------------------------------------------------------------------- execution
class PaperConfig(Section):
    """The paper exchange."""

    latency_ms: float = Field(50.0, ge=0, le=60_000, description="Order acknowledgement and fill latency.")
    commission_per_contract: float = Field(0.65, ge=0, le=100, description="Broker commission per option contract, $.")
    fees_per_contract: float = Field(0.60, ge=0, le=100, description="Exchange and regulatory fees per contract, $.")
    future_commission: float = Field(2.25, ge=0, le=100, description="Commission per future contract, $.")
    slippage_ticks: int = Field(0, ge=0, le=100, description="Extra ticks paid on each fill (backtests).")


class ExecutionConfig(Section):
    """How orders are priced, worked and routed."""

    broker: Literal["paper", "ib"] = Field("paper", description="Where orders go.")
    aggressiveness: float = Field(0.5, ge=0, le=1, description="Limit between mid (0) and the far side (1).")
    reprice_interval_s: float = Field(10.0, gt=0, le=3600, description="Reprice working orders this often.")
    max_slippage: float = Field(0.5, ge=0, le=10, description="Reprice at most this far past the first limit, in "
                                "fractions of the spread.")
    order_timeout_s: float = Field(60.0, gt=0, le=86_400, description="Cancel working orders older than this.")
    on_exit: Literal["cancel", "keep"] = Field("cancel", description="Working orders when the app stops.")
    trading_enabled: bool = Field(True, description="Send orders at all (False = read-only).")
    paper: PaperConfig = Field(default_factory=PaperConfig)


class HedgingConfig(Section):
    """Delta hedging with the index future (or SPY/MES/ES on IB)."""

    enabled: bool = Field(True, description="Keep portfolio delta inside the band.")
    instrument: Literal["future", "ES", "MES", "SPY"] = Field("future", description="Hedge instrument.")
    band_delta: float = Field(250.0, gt=0, le=1e7, description="Hedge when |delta - target| exceeds this, in dollars "
                              "per index point (one SPX option of delta 0.5 = $50; one ES future = $50).")
    target_delta: float = Field(0.0, ge=-1e7, le=1e7, description="Delta to hedge back to, dollars per index point.")
    min_interval_s: float = Field(30.0, ge=0, le=86_400, description="Minimum time between hedges.")


# ----------------------------------------------------------------------------------------- alerts
class EmailConfig(Section):
    enabled: bool = Field(False, description="Send alerts by e-mail.")
    host: str = Field("localhost", description="SMTP server.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 for STARTTLS).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    username: str = Field("", description="SMTP user name (the password comes from HESTON_SMTP_PASSWORD).")
    password: SecretStr | None = Field(None, description="From HESTON_SMTP_PASSWORD only.", exclude=True)
    sender: str = Field("heston-workstation@localhost", description="From address.")
    recipients: list[str] = Field(default_factory=list, description="To addresses.")
    min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "ERROR"
    timeout_s: float = Field(10.0, gt=0, le=600, description="SMTP connect/read timeout, seconds.")


class WebhookConfig(Section):
    enabled: bool = Field(False, description="POST alerts as Slack-compatible JSON.")
    url: SecretStr | None = Field(None, description="From HESTON_WEBHOOK_URL only.", exclude=True)
    timeout_s: float = Field(5.0, gt=0, le=600, description="HTTP timeout.")
    min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "ERROR"


class AlertRule(Section):
    code: str = Field("*", description="Alert code or '*' for all.")
    min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    channels: list[Literal["panel", "tray", "log", "email", "webhook", "console"]] = Field(
        default_factory=lambda: ["panel", "log"])


class AlertsConfig(Section):
    """Alert folding, routing and channels."""

    fold_window_s: float = Field(60.0, ge=0, le=86_400, description="Repeats of a code within this fold into one.")
    tray_min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "CRITICAL"
    log_file: str = Field("alerts.log", description="Rotating alerts log (relative to the log dir).")
    email: EmailConfig = Field(default_factory=EmailConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    rules: list[AlertRule] = Field(default_factory=lambda: [AlertRule()])
    max_retries: int = Field(5, ge=0, le=100, description="Delivery retries per alert and channel.")
    stale_data_s: float = Field(20.0, gt=0, le=86_400, description="Alert when data is older than this.")
    loop_lag_ms: float = Field(250.0, gt=0, le=60_000, description="Alert when the event loop lags more than this.")
    disk_free_mb: float = Field(500.0, ge=0, le=10_000_000, description="Alert when the data disk has less free space.")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus endpoint on 127.0.0.1.")
    retry_backoff_s: float = Field(1.0, gt=0, le=3600,
                                   description="First retry delay of a failed delivery; doubles each "
                                   "retry (capped at 60 s).")
    console_min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Lowest severity printed on the console in headless mode.")
    log_max_bytes: int = Field(1_000_000, ge=10_000, le=10_000_000_000,
                               description="Rotate the alerts log at this size.")
    log_backups: int = Field(5, ge=0, le=1000, description="Rotated alerts logs kept.")


# --------------------------------------------------------------------------------------------- ib
class DailyRestart(Section):
    """The nightly restart of TWS / IB Gateway (its 'Auto restart' time): no new orders from `stop_before_s` before
    it until a reconcile has passed after it (or after `expect_down_s` when no disconnect came)."""

    time: str = Field("23:45", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM of the restart.")
    zone: str = Field("America/New_York", description="IANA time zone of `time`.")
    stop_before_s: float = Field(300.0, ge=0, le=86_400, description="Stop sending new orders this long before.")
    expect_down_s: float = Field(600.0, gt=0, le=86_400, description="How long after the restart time to expect it.")

    @model_validator(mode="after")
    def _zone_exists(self) -> "DailyRestart":
        from zoneinfo import ZoneInfo
        try:
            ZoneInfo(self.zone)
        except Exception as exc:
            raise ValueError(f"unknown time zone {self.zone!r}") from exc
        return self


class IBConfig(Section):
    """Interactive Brokers TWS / IB Gateway (or the practice gateway)."""

    host: str = Field("127.0.0.1", description="TWS / Gateway host.")
    port: int = Field(7497, ge=1, le=65535, description="7497 paper, 7496 live, 4002/4001 Gateway.")
    client_id: int = Field(17, ge=0, le=2**31 - 1, description="API client id (unique per connection).")
    account: SecretStr | None = Field(None, description="From HESTON_IB_ACCOUNT only.", exclude=True)
    live: bool = Field(False, description="A live account: orders need the typed account confirmation.")
    market_data_type: Literal["live", "delayed", "auto"] = Field("auto", description="Fall back to delayed.")
    line_budget: int = Field(90, ge=5, le=10_000, description="Market-data lines we may use at once.")
    connect_timeout_s: float = Field(10.0, gt=0, le=600, description="Give up a connection attempt after this.")
    reconnect_max_backoff_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between reconnects.")
    halt_on_disconnect: bool = Field(True, description="HALTED while the broker is disconnected.")
    pacing_per_s: float = Field(40.0, gt=0, le=50, description="Requests per second we send at most.")
    daily_restart: DailyRestart | None = Field(None, description="TWS/Gateway nightly restart (time, zone).")


class StorageConfig(Section):
    """Journal and recordings."""

    journal_file: str = Field("journal.sqlite", description="SQLite journal, relative to the data dir.")
    recordings_dir: str = Field("recordings", description="Parquet snapshots, relative to the data dir.")
    record: bool = Field(False, description="Record every snapshot while running.")


class UIConfig(Section):
    """The window."""

    theme: Literal["dark", "light"] = "dark"
    refresh_ms: int = Field(250, ge=50, le=5000, description="Panel refresh interval.")
    opengl: Literal["auto", "on", "off"] = Field("auto", description="3-D surface view.")
    confirm_orders: bool = Field(True, description="Show the what-if before sending an approved order.")


class EngineConfig(Section):
    """How the engine protects itself when its own cycle keeps failing."""

    max_failed_cycles: int = Field(3, ge=1, le=1000, description="Cycles failing in a row before trading is "
                                   "HALTED (alert CYCLES_FAILING) until the trader resumes.")


class Settings(Section):
    """All settings of the workstation."""

    market: MarketConfig = Field(default_factory=MarketConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    signals: SignalsConfig = Field(default_factory=SignalsConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    hedging: HedgingConfig = Field(default_factory=HedgingConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    ib: IBConfig = Field(default_factory=IBConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ui: UIConfig = Field(default_factory=UIConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        problems = cross_field_problems(self)
        if problems:
            raise CrossFieldError(problems)
        return self

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain dict for YAML, secrets excluded."""
        return self.model_dump(mode="json", exclude_none=True)


# ------------------------------------------------------------------------------ rules across fields
class CrossFieldError(ValueError):
    """Rules across fields that failed, each as (dotted path, rule); reported one line per rule."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {rule}" for path, rule in problems))


# (smaller, larger, strict): `smaller` must be <= `larger` (< when strict). Each pair is reported on `smaller`.
ORDERED_PAIRS: tuple[tuple[str, str, bool], ...] = (
    ("market.min_expiry_days", "market.max_expiry_days", True),
    ("calibration.min_expiry_days", "calibration.max_expiry_days", True),
    ("calibration.min_moneyness", "calibration.max_moneyness", True),
    ("calibration.rmse_floor", "calibration.max_rmse_iv", False),
    ("signals.min_expiry_days", "signals.max_expiry_days", True),
    ("signals.min_history", "signals.history_length", False),
    ("signals.base_quantity", "signals.max_quantity", False),
    ("signals.auto_max_quantity", "risk.max_order_quantity", False),
    ("signals.auto_max_premium", "risk.max_order_premium", False),
    ("risk.max_order_quantity", "risk.max_position", False),
    ("risk.max_position", "risk.max_total_contracts", False),
)


def _get(settings: BaseModel, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def broken_pairs(settings: "Settings") -> list[tuple[str, str, bool, Any, Any]]:
    """The ORDERED_PAIRS that `settings` break, as (smaller path, larger path, strict, its value, their value)."""
    out = []
    for low, high, strict in ORDERED_PAIRS:
        a, b = _get(settings, low), _get(settings, high)
        if a > b or (strict and a == b):
            out.append((low, high, strict, a, b))
    return out


def cross_field_problems(settings: "Settings") -> list[tuple[str, str]]:
    """Every broken rule across fields (min below max, auto limits within order limits within position
    limits), as (path, rule) pairs naming both values."""
    return [(low, f"must be {'<' if strict else '<='} {high} ({_num(b)}), got {_num(a)}")
            for low, high, strict, a, b in broken_pairs(settings)]


def problems_by_field(settings: "Settings") -> dict[str, str]:
    """The rules across fields that `settings` break, put on both fields of each pair (the settings dialog
    shows each beside the field, whichever of the two the trader typed): dotted path -> reason."""
    out: dict[str, str] = {}
    for low, high, strict, a, b in broken_pairs(settings):
        out.setdefault(low, f"must be {'<' if strict else '<='} {high} ({_num(b)}), got {_num(a)}")
        out.setdefault(high, f"must be {'>' if strict else '>='} {low} ({_num(a)}), got {_num(b)}")
    return out


# ---------------------------------------------------------------------------------------- loading
class ConfigError(Exception):
    """Invalid configuration; `.problems` is one human line per problem."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"invalid configuration{f' in {source}' if source else ''}:"
        super().__init__("\n".join([head, *problems]))


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_RULES = {
    "greater_than": lambda c: f"must be > {_num(c['gt'])}",
    "greater_than_equal": lambda c: f"must be >= {_num(c['ge'])}",
    "less_than": lambda c: f"must be < {_num(c['lt'])}",
    "less_than_equal": lambda c: f"must be <= {_num(c['le'])}",
    "extra_forbidden": lambda c: "unknown key (a typo?)",
    "literal_error": lambda c: f"must be one of {c.get('expected', '')}",
    "too_short": lambda c: f"must have at least {c.get('min_length')} item(s)",
    "missing": lambda c: "is required",
    "finite_number": lambda c: "must be a finite number (no .nan or .inf)",
}


def _shown(value: Any, limit: int = 60) -> str:
    """repr of a bad value, cut short (an alias bomb or a pasted blob must not flood the terminal)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(error: dict[str, Any]) -> str:
    """One line for one pydantic error: 'path: rule, got value' (several lines for failed cross-field rules)."""
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("error"), CrossFieldError):
        prefix = f"{path}." if error["loc"] else ""
        return "\n".join(f"{prefix}{p}: {rule}" for p, rule in ctx["error"].problems)
    rule = _RULES[kind](ctx) if kind in _RULES else error["msg"].replace("Value error, ", "")
    if kind == "extra_forbidden" or kind == "missing":
        return f"{path}: {rule}"
    return f"{path}: {rule}, got {_shown(error.get('input'))}"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `override` into a copy of `base` (override wins; dicts merge, the rest replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------ safe YAML
MAX_FILE_BYTES = 1_000_000     # a full config is ~10 kB
MAX_DEPTH = 32                 # sections nest 3 deep
MAX_ALIASES = 100              # anchors/aliases are allowed, a few
MAX_NODES = 100_000            # scalars + collections after expanding aliases (stops alias bombs)


class GuardedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with limits: nesting depth, alias count, expanded size, and duplicate keys refused
    (plain PyYAML keeps the last value of a duplicate key silently and recurses until RecursionError)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def fetch_flow_sequence_start(self) -> None:
        super().fetch_flow_sequence_start()
        self._check_flow_level()

    def fetch_flow_mapping_start(self) -> None:
        super().fetch_flow_mapping_start()
        self._check_flow_level()

    def _check_flow_level(self) -> None:
        """'[[[[...': refused while scanning (the scanner otherwise reads every bracket before composing)."""
        if self.flow_level > MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            size = _expanded_size(node)
            if size > MAX_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"expands to more than {MAX_NODES:,} values (aliases repeated: an alias bomb?)",
                    node.start_mark)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue                      # '<<' merges are overridden on purpose
                key = self.construct_object(key_node, deep=False)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue                      # an unhashable key: the base class reports it
                if first != key_node.start_mark.line + 1:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {first})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: Any) -> int:
    """Nodes in the tree with every alias expanded, counted without expanding (memoised on shared nodes)."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        key = id(node)
        if key not in sizes:
            sizes[key] = 0                        # a recursive alias counts once
            if isinstance(node, yaml.MappingNode):
                total = 1 + sum(size(k) + size(v) for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                total = 1 + sum(size(v) for v in node.value)
            else:
                total = 1
            sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with limits; a missing, unreadable, empty, oversized, non-UTF-8 or malformed file,
    a duplicate key, deep nesting or an alias bomb is a ConfigError with one line."""
    def refuse(problem: str) -> ConfigError:
        return ConfigError([f"{path}: {problem}"], str(path))

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"], str(path)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(f"larger than {MAX_FILE_BYTES:,} bytes: not a settings file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise refuse(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line}") from None
    if not text.strip():
        raise refuse("the file is empty: write the settings to change, or leave out --config for the defaults")
    try:
        data = yaml.load(text, Loader=GuardedLoader)   # noqa: S506 - GuardedLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise refuse(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:                            # a path the depth cap does not see: still one line
        raise refuse("nested too deeply") from None
    if data is None:
        raise refuse("no settings in the file (only comments?): an empty file is refused")
    if not isinstance(data, dict):
        raise refuse(f"the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _reject_secrets_in_yaml(data: dict[str, Any], source: str) -> list[str]:
    problems = []
    for env, path in ENV_SECRETS.items():
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            problems.append(f"{'.'.join(path)}: secrets are not read from YAML; set {env} in the environment")
    return problems


def validate(data: dict[str, Any], source: str = "") -> Settings:
    """Validate a settings mapping; raise ConfigError with one line per problem."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([line for e in exc.errors() for line in _describe(e).split("\n")], source) from None


def problems_of(settings: Settings) -> list[str]:
    """Re-check a Settings edited field by field (assignments check each field, not the rules across fields):
    one line per problem, empty when the whole is valid."""
    try:
        validate(settings.model_dump())
    except ConfigError as exc:
        return exc.problems
    return []


def load_settings(path: Path | str | None = None, overrides_path: Path | str | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    """Load defaults < YAML at `path` < user overrides at `overrides_path` < secrets from the environment."""
    data: dict[str, Any] = {}
    problems: list[str] = []
    sources = []
    for layer in (path, overrides_path):
        if layer is None:
            continue
        layer = Path(layer)
        if layer == Path(overrides_path or "") and not layer.exists():
            continue
        layer_data = read_yaml(layer)
        problems += [f"{layer}: {p}" for p in _reject_secrets_in_yaml(layer_data, str(layer))]
        data = deep_merge(data, layer_data)
        sources.append(str(layer))
    if problems:
        raise ConfigError(problems, ", ".join(sources))
    env = os.environ if environ is None else environ
    for var, keys in ENV_SECRETS.items():
        if env.get(var):
            node = data
            for key in keys[:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    break
            else:
                node[keys[-1]] = env[var]
    return validate(data, ", ".join(sources))


def save_overrides(settings: Settings, base: Settings, path: Path | str) -> dict[str, Any]:
    """Write the fields of `settings` that differ from `base` to the overrides file; return what was written."""
    diff = _diff(base.to_yaml_dict(), settings.to_yaml_dict())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(diff, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    return diff


def _diff(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            sub = _diff(base[key], value)
            if sub:
                out[key] = sub
        elif base.get(key) != value:
            out[key] = value
    return out


def value_range(info: Any) -> str:
    """The accepted range of a numeric field from its constraints, e.g. '>= 1 and <= 10000' ('' if none)."""
    parts = []
    for meta in info.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{sign} {_num(bound)}")
    return " and ".join(parts)


def field_help(info: Any) -> str:
    """A field's description followed by its accepted range (reference.yaml comments, dialog tooltips)."""
    text = info.description or ""
    accepted = value_range(info)
    return f"{text} Range: {accepted}." if accepted else text


def reference_yaml() -> str:
    """Every setting with its default and description, as commented YAML (config/reference.yaml)."""
    lines = ["# Heston Workstation: every setting, its default and what it does.",
             "# Generated by `python -m workstation.config`; do not edit (edit the models in workstation/config.py).",
             "# Secrets (ib.account, alerts.email.password, alerts.webhook.url) come from environment variables."]

    def walk(model: type[BaseModel], instance: BaseModel, indent: int) -> None:
        pad = "  " * indent
        for name, info in model.model_fields.items():
            if info.exclude:
                continue
            value = getattr(instance, name)
            if info.description:
                lines.append(f"{pad}# {field_help(info)}")
            if isinstance(value, BaseModel):
                lines.append(f"{pad}{name}:")
                walk(type(value), value, indent + 1)
            else:
                dumped = yaml.safe_dump({name: instance.model_dump(mode="json")[name]}, default_flow_style=True,
                                        width=1000).strip()
                lines.append(f"{pad}{dumped[1:-1] if dumped.startswith('{') else dumped}")

    walk(Settings, Settings(), 0)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_yaml(), end="")
