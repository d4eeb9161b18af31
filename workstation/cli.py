"""The command line: gui (default), headless, gateway, backtest, record, fit, doctor.

Common options (--config, --log-level, --data-dir, --version) are accepted before or after the command.
A bad configuration stops start-up before anything connects: one line per problem, exit code 2. So do an
unusable data dir, a damaged journal or paper account, and an unreadable data file (`StorageError`: one line
saying what to do, exit code 2, no traceback).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable

from . import __version__
from .config import ConfigError, Settings, load_settings

COMMANDS = ("gui", "headless", "gateway", "backtest", "record", "fit", "doctor")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "default.yaml"
EXIT_USAGE = 2
DATA_DIR_COMMANDS = ("gui", "headless")     # they open the journal and the paper account in the data dir


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options every command takes; on sub-parsers they default to SUPPRESS so either position works."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, default=default(None), metavar="PATH",
                        help="settings YAML (default: config/default.yaml)")
    parser.add_argument("--log-level", default=default("INFO"), type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity (default INFO)")
    parser.add_argument("--data-dir", type=Path, default=default(None), metavar="DIR",
                        help="journal and recordings (default: the user data dir)")
    parser.add_argument("--version", action="version", version=f"heston-workstation {__version__}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heston-workstation",
        description="Heston Workstation: SPX/XSP options trading on a Heston model of the surface.")
    _common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common_options(p, top=False)
        return p

    gui = add("gui", "open the workstation window (the default command)")
    gui.add_argument("--screenshot", type=Path, metavar="FILE", help="save a PNG of the window and exit")
    gui.add_argument("--after", type=float, default=5.0, metavar="SECONDS", help="delay before --screenshot")
    gui.add_argument("--speed", type=float, help="simulated-market speed multiplier")

    headless = add("headless", "run the engine without a window and print a summary")
    headless.add_argument("--duration", type=float, required=True, metavar="SECONDS", help="wall-clock run time")
    headless.add_argument("--speed", type=float, help="simulated-market speed multiplier")
    headless.add_argument("--json", type=Path, metavar="FILE", help="also write the summary as JSON")
    headless.add_argument("--metrics-port", type=int, metavar="PORT", help="Prometheus endpoint on 127.0.0.1")
    headless.add_argument("--wait", action="store_true",
                          help="keep retrying while TWS / IB Gateway is unreachable (default: exit 2 after "
                               "ib.connect_timeout_s)")

    gateway = add("gateway", "serve the simulated market over the TWS API protocol (practice gateway)")
    gateway.add_argument("--port", type=int, default=7497)
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--seed", type=int)
    gateway.add_argument("--speed", type=float)
    gateway.add_argument("--restart-at", metavar="HH:MM",
                         help="restart daily at this New York time (simulated), as TWS's auto-restart does")
    gateway.add_argument("--restart-down-s", type=float, default=60.0, metavar="S",
                         help="how long the port stays closed at the restart (wall seconds, default 60)")

    backtest = add("backtest", "replay recorded snapshots through the engine and write a report")
    backtest.add_argument("data", type=Path, metavar="DATA", help="recording directory or Cboe CSV")
    backtest.add_argument("--from", dest="date_from", metavar="DATE")
    backtest.add_argument("--to", dest="date_to", metavar="DATE")
    backtest.add_argument("--out", type=Path, required=True, metavar="DIR")
    backtest.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2")
    backtest.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT")

    record = add("record", "record simulator (or IB) snapshots to Parquet")
    record.add_argument("--duration", type=float, required=True, metavar="SECONDS", help="wall-clock seconds")
    record.add_argument("--speed", type=float, help="simulated-market speed multiplier")
    record.add_argument("--out", type=Path, required=True, metavar="DIR")

    fit = add("fit", "fit the fair-value surface (and a Heston-family model) to one chain and report the quality")
    fit.add_argument("chain", type=Path, metavar="CHAIN", help="Cboe delayed-quotes CSV or a recording")
    fit.add_argument("--model", choices=["surface", "heston", "bates", "heston_td"], default="surface")
    fit.add_argument("--cv", type=int, metavar="K", help="K-fold out-of-sample values (strike rank mod K)")
    fit.add_argument("--out", type=Path, metavar="FILE.csv", help="every quote with fair and model values")
    fit.add_argument("--json", type=Path, metavar="FILE.json", help="quality per model")

    add("doctor", "check the set-up and say how to fix what fails")
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """Insert `gui` when no command is named (`python main.py --config x` opens the window)."""
    if any(arg in COMMANDS for arg in argv) or any(a in ("-h", "--help", "--version") for a in argv):
        return argv
    return [*argv, "gui"]


# Where each command lives: module, function(settings, args) -> exit code.
HANDLERS: dict[str, tuple[str, str]] = {
    "gui": ("workstation.ui.app", "run_gui"),
    "headless": ("workstation.headless", "run_headless"),
    "gateway": ("workstation.sim.gateway", "run_gateway"),
    "backtest": ("workstation.backtest.command", "run_backtest"),
    "record": ("workstation.market.record_command", "run_record_command"),
    "fit": ("workstation.fit_command", "run_fit"),
    "doctor": ("workstation.doctor", "run_doctor"),
}


def _handler(command: str) -> Callable[[Settings, argparse.Namespace], int] | None:
    module_name, func = HANDLERS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, func, None)


def load_for(args: argparse.Namespace) -> Settings:
    """Settings for this invocation: defaults < --config YAML < user overrides < environment secrets."""
    from .storage.paths import overrides_path
    path = args.config or DEFAULT_CONFIG
    return load_settings(path, overrides_path())


def main(argv: list[str] | None = None, gc_held: bool = False) -> int:
    """Run one command; `gc_held`: the caller (main.py) turned automatic garbage collection off for start-up."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(_with_default_command(argv))
    args.config_problems = []
    try:
        settings = load_for(args)
    except ConfigError as exc:
        if args.command != "doctor":
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        settings, args.config_problems = Settings(), exc.problems   # the doctor reports it as a failed check
    handler = _handler(args.command)
    if handler is None:
        print(f"'{args.command}' is not built yet in this version of Heston Workstation.", file=sys.stderr)
        return EXIT_USAGE
    from .logging_setup import configure_logging
    from .storage.paths import default_log_dir
    configure_logging(args.log_level, None if args.command == "doctor" else default_log_dir())
    from .storage.integrity import StorageError, check_data_dir
    from .storage.paths import data_dir_for
    if gc_held and args.command != "gui":   # the window freezes start-up's objects and collects on its own timer
        release_start_up_collection()
    try:
        if args.command in DATA_DIR_COMMANDS:
            check_data_dir(data_dir_for(args))
        return int(handler(settings, args) or 0)
    except StorageError as exc:     # a damaged journal or account, an unusable data dir, a bad data file
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def release_start_up_collection() -> None:
    """Automatic garbage collection back on, with what start-up made (modules, classes) kept out of it."""
    import gc

    gc.freeze()
    gc.enable()


if __name__ == "__main__":
    sys.exit(main())
