"""Configs validated whole (issue #16): every number finite and within a range a trader would accept, the rules
across fields, and files that are empty, duplicated, badly encoded, too deep or alias bombs refused by the CLI
with exit 2 and one line per problem, never a traceback."""
from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pytest

from workstation import cli
from workstation.config import (MAX_ALIASES, MAX_FILE_BYTES, ORDERED_PAIRS, ConfigError, Section, Settings,
                                load_settings, problems_of, validate)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_user_overrides(tmp_path, monkeypatch):
    """The user's overrides file must not leak into these runs."""
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


def run_cli(path: Path, capsys) -> tuple[int, list[str]]:
    code = cli.main(["--config", str(path), "headless", "--duration", "1"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(data)
    return err.value.problems


# ----------------------------------------------------------------------------------- every number
@pytest.mark.parametrize("section, key, text", [
    ("hedging", "target_delta", ".nan"),
    ("risk", "max_daily_loss", ".inf"),
    ("risk", "max_gamma_dollars", ".inf"),
    ("risk", "max_delta_dollars", "-.inf"),
    ("risk", "price_band", ".inf"),
    ("risk", "max_var_99", "1.0e+26"),
    ("risk", "max_order_premium", "1.0e+26"),
    ("risk", "max_position", "100000000000000000000000000"),
    ("signals", "auto_max_premium", "1.0e+23"),
])
def test_non_finite_and_absurd_numbers_are_refused_by_the_cli(tmp_path, capsys, section, key, text):
    path = tmp_path / "bad.yaml"
    path.write_text(f"{section}:\n  {key}: {text}\n")
    code, lines = run_cli(path, capsys)
    assert code == 2
    assert lines[0] == f"error: invalid configuration in {path}:"
    assert len(lines) == 2 and lines[1].startswith(f"{section}.{key}: must be ")


def test_nan_is_refused_everywhere_even_inside_lists():
    lines = problems({"risk": {"restricted_strikes": [5000.0, float("nan")]},
                      "market": {"simulator": {"spot": float("inf")}}})
    assert "risk.restricted_strikes.1: must be a finite number (no .nan or .inf), got nan" in lines
    assert "market.simulator.spot: must be a finite number (no .nan or .inf), got inf" in lines


def _numeric_fields(model: type[Section], prefix: str = ""):
    for name, info in model.model_fields.items():
        if typing.get_origin(info.annotation) is list:
            continue                               # lists of numbers bound their items (restricted_strikes)
        annotation = typing.get_args(info.annotation)[0] if typing.get_origin(info.annotation) else info.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            yield from _numeric_fields(annotation, f"{prefix}{name}.")
        elif annotation in (int, float) and info.annotation is not bool:
            yield f"{prefix}{name}", info


def test_every_number_has_an_upper_bound_written_in_its_help():
    """No limit is open-ended: 1e26 cannot pass anywhere, and the range is documented (reference.yaml)."""
    from workstation.config import field_help
    fields = list(_numeric_fields(Settings))
    assert len(fields) > 100
    unbounded = [p for p, info in fields if not any(hasattr(m, "le") or hasattr(m, "lt") for m in info.metadata)]
    assert unbounded == []
    reference = (ROOT / "config" / "reference.yaml").read_text()
    for path, info in fields:
        assert "Range: " in field_help(info)
    assert "max_order_quantity: 20" in reference and "Largest order, contracts. Range: >= 1 and <= 10000." in reference


# ------------------------------------------------------------------------------- rules across fields
@pytest.mark.parametrize("data, line", [
    ({"signals": {"auto_max_premium": 60_000}},
     "signals.auto_max_premium: must be <= risk.max_order_premium (50000), got 60000"),
    ({"signals": {"auto_max_quantity": 25}},
     "signals.auto_max_quantity: must be <= risk.max_order_quantity (20), got 25"),
    ({"risk": {"max_order_quantity": 60}, "signals": {"auto_max_quantity": 5}},
     "risk.max_order_quantity: must be <= risk.max_position (50), got 60"),
    ({"risk": {"max_position": 600}, "signals": {}},
     "risk.max_position: must be <= risk.max_total_contracts (500), got 600"),
    ({"signals": {"min_history": 61}}, "signals.min_history: must be <= signals.history_length (60), got 61"),
    ({"calibration": {"min_moneyness": 1.4}},
     "calibration.min_moneyness: must be < calibration.max_moneyness (1.3), got 1.4"),
    ({"calibration": {"min_moneyness": 1.3}},
     "calibration.min_moneyness: must be < calibration.max_moneyness (1.3), got 1.3"),
    ({"market": {"min_expiry_days": 500}},
     "market.min_expiry_days: must be < market.max_expiry_days (400), got 500"),
    ({"signals": {"min_expiry_days": 200}},
     "signals.min_expiry_days: must be < signals.max_expiry_days (180), got 200"),
    ({"signals": {"base_quantity": 11}}, "signals.base_quantity: must be <= signals.max_quantity (10), got 11"),
])
def test_rules_across_fields_name_both_fields_and_values(data, line):
    assert line in problems(data)


def test_the_issue_chain_auto_above_order_above_position_reports_each_link(tmp_path, capsys):
    path = tmp_path / "chain.yaml"
    path.write_text("signals:\n  auto_max_quantity: 30\n  auto_max_premium: 90000\n"
                    "risk:\n  max_order_quantity: 25\n  max_position: 10\n")
    code, lines = run_cli(path, capsys)
    assert code == 2 and lines[0] == f"error: invalid configuration in {path}:"
    assert lines[1:] == [
        "signals.auto_max_quantity: must be <= risk.max_order_quantity (25), got 30",
        "signals.auto_max_premium: must be <= risk.max_order_premium (50000), got 90000",
        "risk.max_order_quantity: must be <= risk.max_position (10), got 25"]


def test_every_ordered_pair_holds_in_the_defaults_and_shipped_configs():
    for name in ("default.yaml", "paper.yaml", "live.yaml", "reference.yaml"):
        assert problems_of(load_settings(ROOT / "config" / name, environ={})) == []
    assert len(ORDERED_PAIRS) >= 10


def test_problems_of_finds_a_rule_broken_by_assignments():
    """Assignments check each field alone; the dialog and the engine re-check the whole with problems_of."""
    s = Settings()
    s.signals.min_history = 100       # valid alone, breaks min_history <= history_length (60)
    assert problems_of(s) == ["signals.min_history: must be <= signals.history_length (60), got 100"]


def test_engine_max_failed_cycles_defaults_to_3_and_must_be_at_least_1():
    assert Settings().engine.max_failed_cycles == 3
    assert problems({"engine": {"max_failed_cycles": 0}}) == ["engine.max_failed_cycles: must be >= 1, got 0"]


# ---------------------------------------------------------------------------------------- the file
def lol_bomb() -> str:
    """The billion-laughs shape inside a field: 9 levels of 9 aliases each (9^9 values once expanded)."""
    lines = ["signals:", "  l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 10):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    lines.append("  min_history: *l9")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name, content, expect", [
    ("empty", b"", "the file is empty"),
    ("blank", b"\n   \n", "the file is empty"),
    ("comments only", b"# risk:\n#   max_position: 5\n", "no settings in the file"),
    ("duplicate key", b"risk:\n  max_position: 5\n  max_position: 50\n",
     "duplicate key 'max_position' (first on line 2)"),
    ("duplicate section", b"risk:\n  max_position: 5\nrisk:\n  max_daily_loss: 10\n", "duplicate key 'risk'"),
    ("non-UTF-8 byte", b"risk:\n  max_position: 5\n  # caf\xe9\n", "not UTF-8 text: byte 0xe9 on line 3"),
    ("deep nesting", b"risk: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested deeper than 32 levels"),
    ("deep flow mapping", b"risk: " + b"{a: " * 20_000 + b"}" * 20_000 + b"\n", "nested deeper than 32 levels"),
    ("deep mapping", ("risk:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(60))).encode(),
     "nested deeper than 32 levels"),
    ("alias bomb", lol_bomb().encode(), "aliases"),
    ("too many aliases", ("a: &x 1\nb: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n").encode(),
     f"more than {MAX_ALIASES} aliases"),
    ("oversized", b"# " + b"x" * MAX_FILE_BYTES + b"\n", "larger than"),
    ("not a mapping", b"- risk\n- signals\n", "the top level must be a mapping"),
])
def test_bad_files_exit_2_with_one_line_and_no_traceback(tmp_path, capsys, name, content, expect):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, lines = run_cli(path, capsys)
    assert code == 2
    assert lines[0] == f"error: invalid configuration in {path}:"
    assert len(lines) == 2 and lines[1].startswith(f"{path}: ") and expect in lines[1], lines


def test_alias_bomb_expanded_size_is_what_is_refused(tmp_path):
    """Ten aliases can already be a bomb: the expanded size is capped, not only the alias count."""
    path = tmp_path / "bomb.yaml"
    path.write_text(lol_bomb())
    assert lol_bomb().count("*") < MAX_ALIASES
    with pytest.raises(ConfigError, match="expands to more than"):
        load_settings(path, environ={})


def test_merge_keys_and_a_few_aliases_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("risk:\n  max_position: &n 40\n  max_order_quantity: 20\nsignals:\n  max_quantity: 10\n"
                    "calibration: &cal\n  min_moneyness: 0.8\n")
    s = load_settings(path, environ={})
    assert s.risk.max_position == 40 and s.calibration.min_moneyness == 0.8


def test_the_real_cli_process_exits_2_on_deep_nesting_without_traceback(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_bytes(b"risk:\n  restricted_strikes: " + b"[" * 20_000 + b"]" * 20_000 + b"\n")
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(path), "headless", "--duration",
                           "1"], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    head, line = proc.stderr.strip().splitlines()
    assert head == f"error: invalid configuration in {path}:"
    assert line.startswith(f"{path}: not valid YAML (line 2, ") and line.endswith("nested deeper than 32 levels")
