"""Backtests: recorded snapshots replayed through the same engine, filled against the recorded quotes, reported.

`python main.py backtest DATA --out DIR` (see `command`); `runner.run` for code; `sweep` for parameter sweeps.
"""
