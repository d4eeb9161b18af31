"""Typed settings: built-in defaults < YAML file < user overrides file < environment (secrets only).

Every section is a pydantic model with documented fields; unknown keys are errors (they are usually typos).
A bad file or value raises `ConfigError`, whose `.problems` are one line per problem naming the field
path, the value and the rule, e.g. ``risk.max_daily_loss: must be > 0, got -5``.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

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
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# ----------------------------------------------------------------------------------------- market
class SimulatorConfig(Section):
    """The built-in simulated SPX/XSP market."""

    seed: int = Field(7, description="Random seed: the same seed gives the same market.")
    speed: float = Field(1.0, gt=0, le=10_000, description="Simulated seconds per wall-clock second.")
    always_open: bool = Field(False, description="Ignore the 09:30-16:00 ET session (demo mode).")
    start: Literal["open", "now"] = Field("open", description="Start the simulated day at the session open, "
                                          "or at the current wall-clock time.")
    start_date: date | None = Field(None, description="Simulated trade date (default: the last weekday).")
    spot: float = Field(5900.0, gt=0, description="SPX level at the start.")
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
    min_wall_interval_s: float = Field(0.5, gt=0, le=60, description="Fastest snapshot pace in wall-clock "
                                       "seconds: snapshots come every market.snapshot_interval_s of simulated "
                                       "time, compressed by speed, but never faster than this.")
    mispricing_rate: float = Field(0.02, ge=0, le=10, description="New mispricings per simulated second.")
    mispricing_size_vol: float = Field(0.03, ge=0, le=0.5,
                                       description="Typical size of a mispricing, in vol (0.03 = 3 points).")
    mispricing_half_life_s: float = Field(600.0, gt=0, description="Half-life of a mispricing, simulated seconds.")


class MarketConfig(Section):
    """Where quotes come from and which part of the chain we watch."""

    source: Literal["sim", "ib", "replay"] = Field("sim", description="Market data feed.")
    underlying: Literal["SPX", "XSP"] = Field("SPX", description="Index whose options we trade.")
    snapshot_interval_s: float = Field(5.0, gt=0, le=3600, description="Seconds of market time between chain "
                                       "snapshots (the simulator compresses them by its speed).")
    min_expiry_days: float = Field(0.0, ge=0, description="Shortest expiry to request, calendar days.")
    max_expiry_days: float = Field(400.0, gt=0, description="Longest expiry to request, calendar days.")
    strike_window: float = Field(0.25, gt=0, le=1.0, description="Strikes within +-this fraction of spot.")
    stale_after_s: float = Field(30.0, gt=0, description="Data older than this is stale (alert, no trading).")
    max_rel_spread: float = Field(0.5, gt=0, description="Quotes wider than this fraction of mid are unusable.")
    replay_path: Path | None = Field(None, description="Recording directory or Cboe CSV for source=replay.")
    replay_speed: float = Field(0.0, ge=0, description="Replay pace: 1 = as recorded, 0 = as fast as possible.")
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)

    @model_validator(mode="after")
    def _window(self) -> "MarketConfig":
        if self.max_expiry_days <= self.min_expiry_days:
            raise ValueError(f"max_expiry_days ({self.max_expiry_days}) must be > min_expiry_days "
                             f"({self.min_expiry_days})")
        return self


# ------------------------------------------------------------------------------------ calibration
class CalibrationConfig(Section):
    """Which quotes the Heston fit uses and when a fit is rejected."""

    enabled: bool = Field(True, description="Fit the model every snapshot.")
    min_expiry_days: float = Field(7.0, ge=0, description="Shortest expiry in the fit, calendar days.")
    max_expiry_days: float = Field(730.0, gt=0, description="Longest expiry in the fit, calendar days.")
    min_moneyness: float = Field(0.7, gt=0, description="Lowest K/F in the fit.")
    max_moneyness: float = Field(1.3, gt=0, description="Highest K/F in the fit.")
    max_rel_spread: float = Field(0.2, gt=0, description="Largest (ask-bid)/mid of a quote in the fit.")
    min_bid: float = Field(0.5, ge=0, description="Smallest bid of a quote in the fit, index points.")
    otm_only: bool = Field(True, description="Use out-of-the-money options only (puts below F, calls above).")
    max_quotes: int = Field(2000, ge=10, description="Cap on quotes per fit (thinned evenly per expiry).")
    worse_factor: float = Field(2.0, gt=1, description="A fit whose RMSE exceeds the last good one by this "
                                "factor is rejected (the last good parameters are kept).")
    max_rmse_iv: float = Field(5.0, gt=0, description="A fit with IV RMSE above this (vol points) is rejected.")
    rmse_floor: float = Field(0.5, gt=0, description="'Much worse' is judged against at least this RMSE "
                              "(vol points), so a lucky near-perfect fit does not lock the model.")
    max_rejections: int = Field(5, ge=1, description="After this many 'much worse' fits in a row the new "
                                "level is accepted (the market changed, or the last good fit saw a partial chain).")
    max_iterations: int = Field(100, ge=1, description="Levenberg-Marquardt iteration cap.")
    ftol: float = Field(1e-5, gt=0, lt=1, description="Stop when a step lowers the squared IV error by less "
                        "than this fraction (quote noise dwarfs what further iterations gain).")
    integration_tol: float = Field(1e-9, ge=1e-15, le=1e-6, description="Where the Heston pricing integral is "
                                   "truncated in the fit and the model values (1e-13 is reference accuracy and "
                                   "~25% slower; 1e-9 stays within 1e-10 of the forward of it, far below a tick).")
    timeout_s: float = Field(2.0, gt=0, description="A fit slower than this raises a slow-fit alert.")


# ---------------------------------------------------------------------------------------- signals
class SignalsConfig(Section):
    """Mispricing thresholds, persistence, sizing, auto-execution and exits."""

    min_edge_vol: float = Field(0.5, ge=0, description="Minimum edge in vol points (edge >= this x vega).")
    spread_multiple: float = Field(1.0, ge=0, description="Minimum edge as a multiple of the half-spread.")
    min_edge_dollars: float = Field(20.0, ge=0, description="Minimum edge per contract, dollars.")
    min_zscore: float = Field(2.0, ge=0, description="Minimum |z| of the IV residual vs its own history.")
    history_length: int = Field(60, ge=3, description="Snapshots of residual history per contract.")
    min_history: int = Field(8, ge=2, description="Snapshots needed before a contract can signal.")
    min_vega: float = Field(0.5, ge=0, description="Minimum vega per contract, dollars per vol point.")
    min_size: int = Field(1, ge=0, description="Minimum displayed size on the side we trade.")
    min_expiry_days: float = Field(1.0, ge=0, description="Shortest expiry that may signal, days.")
    max_expiry_days: float = Field(180.0, gt=0, description="Longest expiry that may signal, days.")
    max_age_s: float = Field(60.0, gt=0, description="A signal not acted on within this expires.")
    cooldown_s: float = Field(120.0, ge=0, description="After a signal closes, the same contract and side "
                              "may not signal again for this long (market seconds).")
    max_open_signals: int = Field(50, ge=1, description="Most signals shown at once (best edge first).")
    base_quantity: int = Field(1, ge=1, description="Contracts per signal before scaling by edge.")
    max_quantity: int = Field(10, ge=1, description="Largest suggested size of one signal.")
    auto_execute: bool = Field(False, description="Approve NEW signals within the auto limits automatically.")
    auto_max_quantity: int = Field(5, ge=1, description="Auto-execute only signals up to this size.")
    auto_max_premium: float = Field(20_000.0, gt=0, description="Auto-execute only orders up to this premium, $.")
    exit_converged_vol: float = Field(0.2, ge=0, description="Close when the residual is back within this, vol pts.")
    stop_loss_dollars: float = Field(2_000.0, gt=0, description="Close a position losing more than this, $.")
    time_stop_minutes: float = Field(240.0, gt=0, description="Close a position held longer than this.")
    close_days_before_expiry: float = Field(1.0, ge=0, description="Close positions this many days before expiry.")


# ------------------------------------------------------------------------------------------- risk
class RiskConfig(Section):
    """Hard pre-trade limits and portfolio limits. Every order, hedges included, is checked."""

    max_order_quantity: int = Field(20, ge=1, description="Largest order, contracts.")
    max_order_premium: float = Field(50_000.0, gt=0, description="Largest premium of one order, $.")
    max_position: int = Field(50, ge=1, description="Largest |position| in one contract.")
    max_total_contracts: int = Field(500, ge=1, description="Largest sum of |positions| over all options.")
    max_open_orders: int = Field(20, ge=1, description="Most working orders at once.")
    max_orders_per_minute: int = Field(30, ge=1, description="Order-rate throttle.")
    price_band: float = Field(0.25, gt=0, description="Fat finger: limit within this fraction of mid/model.")
    price_band_min: float = Field(0.5, ge=0, description="...or within this many points, whichever is wider.")
    duplicate_window_s: float = Field(2.0, ge=0, description="Same contract/side/qty within this is a duplicate.")
    max_daily_loss: float = Field(25_000.0, gt=0, description="Daily loss limit, $ (breach halts trading).")
    max_delta_dollars: float = Field(500_000.0, gt=0, description="|Portfolio delta$| limit: $ P&L of a 1% "
                                     "move of the forward (delta x F x 1% x multiplier x qty).")
    max_gamma_dollars: float = Field(50_000.0, gt=0, description="|Portfolio gamma$| limit: change of delta$ "
                                     "for a 1% move (gamma x (1% F)^2 x multiplier x qty).")
    max_vega_dollars: float = Field(50_000.0, gt=0, description="|Portfolio vega$| limit: $ P&L of +1 vol point.")
    max_var_99: float = Field(100_000.0, gt=0, description="1-day 99% VaR limit, $.")
    daily_loss_action: Literal["HALTED", "REDUCING"] = Field("HALTED", description="State after a daily-loss breach.")
    limit_breach_action: Literal["REDUCING", "HALTED", "NONE"] = Field(
        "REDUCING", description="State after a Greek or VaR limit breach.")
    auto_resume_limits: bool = Field(True, description="Lift a Greek/VaR breach state by itself once every "
                                     "Greek and VaR limit is back inside (else the trader resumes).")
    restricted_underlyings: list[str] = Field(default_factory=list, description="Underlyings we must not trade.")
    restricted_expiries: list[date] = Field(default_factory=list, description="Expiry dates we must not trade.")
    restricted_strikes: list[float] = Field(default_factory=list, description="Strikes we must not trade.")
    min_days_to_expiry: float = Field(0.5, ge=0, description="No options closer to expiry than this (0-day guard).")
    allow_uncovered_shorts: bool = Field(False, description="Allow net short options not covered by longs.")
    buying_power: float = Field(1_000_000.0, gt=0, description="Account buying power for the margin check, $.")
    future_margin_rate: float = Field(0.06, gt=0, le=1, description="Margin of a future as a fraction of its "
                                      "notional (a stand-in for SPAN) in the Reg-T style estimate.")
    var_scenarios: int = Field(2000, ge=100, le=100_000, description="Simulated 1-day Heston scenarios for VaR.")
    var_seed: int = Field(11, description="Random seed of the VaR scenarios (same book, same VaR).")
    var_interval_s: float = Field(30.0, ge=0, description="Market seconds between full revaluations (VaR, stress "
                                  "grid) of an unchanged book; a trade triggers one at once. Greeks, daily loss "
                                  "and the last VaR are checked every cycle. 0: every cycle.")
    retry_denied_s: float = Field(30.0, ge=0, description="An exit or hedge the checks denied is retried "
                                  "after this long, not every cycle.")
    enforce_trading_hours: bool = Field(True, description="Deny orders outside the contract's trading hours.")


# -------------------------------------------------------------------------------------- execution
class PaperConfig(Section):
    """The paper exchange."""

    latency_ms: float = Field(50.0, ge=0, description="Order acknowledgement and fill latency.")
    commission_per_contract: float = Field(0.65, ge=0, description="Broker commission per option contract, $.")
    fees_per_contract: float = Field(0.60, ge=0, description="Exchange and regulatory fees per contract, $.")
    future_commission: float = Field(2.25, ge=0, description="Commission per future contract, $.")
    slippage_ticks: int = Field(0, ge=0, description="Extra ticks paid on each fill (backtests).")


class ExecutionConfig(Section):
    """How orders are priced, worked and routed."""

    broker: Literal["paper", "ib"] = Field("paper", description="Where orders go.")
    aggressiveness: float = Field(0.5, ge=0, le=1, description="Limit between mid (0) and the far side (1).")
    reprice_interval_s: float = Field(10.0, gt=0, description="Reprice working orders this often.")
    max_slippage: float = Field(0.5, ge=0, description="Reprice at most this far past the first limit, in "
                                "fractions of the spread.")
    order_timeout_s: float = Field(60.0, gt=0, description="Cancel working orders older than this.")
    on_exit: Literal["cancel", "keep"] = Field("cancel", description="Working orders when the app stops.")
    trading_enabled: bool = Field(True, description="Send orders at all (False = read-only).")
    paper: PaperConfig = Field(default_factory=PaperConfig)


class HedgingConfig(Section):
    """Delta hedging with the index future (or SPY/MES/ES on IB)."""

    enabled: bool = Field(True, description="Keep portfolio delta inside the band.")
    instrument: Literal["future", "ES", "MES", "SPY"] = Field("future", description="Hedge instrument.")
    band_delta: float = Field(250.0, gt=0, description="Hedge when |delta - target| exceeds this, in dollars "
                              "per index point (one SPX option of delta 0.5 = $50; one ES future = $50).")
    target_delta: float = Field(0.0, description="Delta to hedge back to, dollars per index point.")
    min_interval_s: float = Field(30.0, ge=0, description="Minimum time between hedges.")


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
    timeout_s: float = Field(10.0, gt=0, description="SMTP connect/read timeout, seconds.")


class WebhookConfig(Section):
    enabled: bool = Field(False, description="POST alerts as Slack-compatible JSON.")
    url: SecretStr | None = Field(None, description="From HESTON_WEBHOOK_URL only.", exclude=True)
    timeout_s: float = Field(5.0, gt=0, description="HTTP timeout.")
    min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "ERROR"


class AlertRule(Section):
    code: str = Field("*", description="Alert code or '*' for all.")
    min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    channels: list[Literal["panel", "tray", "log", "email", "webhook", "console"]] = Field(
        default_factory=lambda: ["panel", "log"])


class AlertsConfig(Section):
    """Alert folding, routing and channels."""

    fold_window_s: float = Field(60.0, ge=0, description="Repeats of a code within this fold into one.")
    tray_min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = "CRITICAL"
    log_file: str = Field("alerts.log", description="Rotating alerts log (relative to the log dir).")
    email: EmailConfig = Field(default_factory=EmailConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    rules: list[AlertRule] = Field(default_factory=lambda: [AlertRule()])
    max_retries: int = Field(5, ge=0, description="Delivery retries per alert and channel.")
    stale_data_s: float = Field(20.0, gt=0, description="Alert when data is older than this.")
    loop_lag_ms: float = Field(250.0, gt=0, description="Alert when the event loop lags more than this.")
    disk_free_mb: float = Field(500.0, ge=0, description="Alert when the data disk has less free space.")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus endpoint on 127.0.0.1.")
    retry_backoff_s: float = Field(1.0, gt=0, description="First retry delay of a failed delivery; doubles each "
                                   "retry (capped at 60 s).")
    console_min_severity: Literal["INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Lowest severity printed on the console in headless mode.")
    log_max_bytes: int = Field(1_000_000, ge=10_000, description="Rotate the alerts log at this size.")
    log_backups: int = Field(5, ge=0, description="Rotated alerts logs kept.")


# --------------------------------------------------------------------------------------------- ib
class DailyRestart(Section):
    """The nightly restart of TWS / IB Gateway (its 'Auto restart' time): no new orders from `stop_before_s` before
    it until a reconcile has passed after it (or after `expect_down_s` when no disconnect came)."""

    time: str = Field("23:45", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM of the restart.")
    zone: str = Field("America/New_York", description="IANA time zone of `time`.")
    stop_before_s: float = Field(300.0, ge=0, description="Stop sending new orders this long before.")
    expect_down_s: float = Field(600.0, gt=0, description="How long after the restart time to expect it.")

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
    client_id: int = Field(17, ge=0, description="API client id (unique per connection).")
    account: SecretStr | None = Field(None, description="From HESTON_IB_ACCOUNT only.", exclude=True)
    live: bool = Field(False, description="A live account: orders need the typed account confirmation.")
    market_data_type: Literal["live", "delayed", "auto"] = Field("auto", description="Fall back to delayed.")
    line_budget: int = Field(90, ge=5, le=10_000, description="Market-data lines we may use at once.")
    connect_timeout_s: float = Field(10.0, gt=0)
    reconnect_max_backoff_s: float = Field(60.0, gt=0)
    halt_on_disconnect: bool = Field(True, description="HALTED while the broker is disconnected.")
    pacing_per_s: float = Field(40.0, gt=0, description="Requests per second we send at most.")
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

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain dict for YAML, secrets excluded."""
        return self.model_dump(mode="json", exclude_none=True)


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
}


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    rule = _RULES[kind](ctx) if kind in _RULES else error["msg"].replace("Value error, ", "")
    if kind == "extra_forbidden" or kind == "missing":
        return f"{path}: {rule}"
    return f"{path}: {rule}, got {error.get('input')!r}"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `override` into a copy of `base` (override wins; dicts merge, the rest replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or malformed file is a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"], str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"], str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of sections, got {type(data).__name__}"],
                          str(path))
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
        raise ConfigError([_describe(e) for e in exc.errors()], source) from None


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
                lines.append(f"{pad}# {info.description}")
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
