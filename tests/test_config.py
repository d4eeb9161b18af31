"""Typed settings: layers, validation messages, secrets only from the environment, shipped files valid."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workstation.config import ConfigError, Settings, load_settings, save_overrides, validate
from workstation.logging_setup import SecretMasker

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["default.yaml", "paper.yaml", "live.yaml"])
def test_shipped_configs_are_valid(name):
    s = load_settings(ROOT / "config" / name, environ={})
    assert isinstance(s, Settings)


def test_live_config_is_conservative_and_read_only_until_confirmed():
    live = load_settings(ROOT / "config" / "live.yaml", environ={})
    assert live.ib.port == 7496 and live.ib.live and not live.execution.trading_enabled
    assert live.risk.max_order_quantity <= Settings().risk.max_order_quantity
    assert load_settings(ROOT / "config" / "paper.yaml", environ={}).ib.port == 7497


def test_layers_defaults_yaml_overrides_environment(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("risk:\n  max_position: 7\n  max_order_quantity: 5\n")
    over = tmp_path / "overrides.yaml"
    over.write_text("risk:\n  max_position: 9\n")
    s = load_settings(base, over, environ={"HESTON_IB_ACCOUNT": "DU999", "HESTON_WEBHOOK_URL": "https://x/y"})
    assert s.risk.max_position == 9                    # overrides beat the file
    assert s.risk.max_order_quantity == 5              # the file beats the defaults
    assert s.risk.max_daily_loss == Settings().risk.max_daily_loss
    assert s.ib.account.get_secret_value() == "DU999"
    assert "DU999" not in str(s.to_yaml_dict()) and "https://x/y" not in yaml.safe_dump(s.to_yaml_dict())


def test_every_problem_is_reported_with_its_path_value_and_rule():
    with pytest.raises(ConfigError) as err:
        validate({"risk": {"max_daily_loss": -5, "max_position": "many"},
                  "signals": {"min_zscore": -1}, "typo_section": {}})
    text = "\n".join(err.value.problems)
    assert "risk.max_daily_loss: must be > 0, got -5" in text
    assert "risk.max_position:" in text and "'many'" in text
    assert "signals.min_zscore: must be >= 0, got -1" in text
    assert "typo_section: unknown key" in text


def test_malformed_yaml_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_save_overrides_writes_only_what_changed(tmp_path):
    base = Settings()
    new = base.model_copy(deep=True)
    new.risk.max_position = 25
    path = tmp_path / "o.yaml"
    assert save_overrides(new, base, path) == {"risk": {"max_position": 25}}
    assert load_settings(None, path, environ={}).risk.max_position == 25


def test_assignments_are_validated_like_the_file():
    s = Settings()
    with pytest.raises(ValueError):
        s.risk.max_daily_loss = -1


def test_secrets_are_masked_in_logs():
    import logging
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting with %s", ("hunter2-secret",), None)
    SecretMasker(["hunter2-secret"]).filter(record)
    assert "hunter2-secret" not in record.getMessage() and "***" in record.getMessage()


def test_reference_yaml_is_current_and_loads():
    """config/reference.yaml documents every field; it must match the models (regenerate when they change)."""
    from workstation.config import reference_yaml
    text = (ROOT / "config" / "reference.yaml").read_text()
    assert text == reference_yaml(), "run: python -m workstation.config > config/reference.yaml"
    assert isinstance(load_settings(ROOT / "config" / "reference.yaml", environ={}), Settings)


def test_ib_cancel_confirmations_do_not_read_as_errors():
    import logging
    from workstation.logging_setup import IBNoiseFilter
    noise = logging.LogRecord("ib_async.wrapper", logging.ERROR, __file__, 1, "Error 202, reqId 7: Order Canceled",
                              None, None)
    real = logging.LogRecord("ib_async.wrapper", logging.ERROR, __file__, 1, "Error 201, reqId 8: Order rejected",
                             None, None)
    assert not IBNoiseFilter().filter(noise) and IBNoiseFilter().filter(real)
