"""`python main.py fit`: end to end on a real chain, on a recording, and on malformed files (exit 2, one line)."""
from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chain_support import CHAINS, clean_chain
from workstation.cli import main
from workstation.pricing import black_price

ROOT = Path(__file__).resolve().parents[1]
REAL = CHAINS[1]        # the smaller real chain (long-dated, ~2,000 quotes)
HAS_MODELS = importlib.util.find_spec("workstation.pricing.models") is not None


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "fit", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.mark.skipif(not REAL.exists(), reason="real SPX chain not present in ../shared/data")
def test_fit_real_chain_writes_every_quote_and_the_quality(tmp_path):
    out, js = tmp_path / "fit.csv", tmp_path / "fit.json"
    proc = run(str(REAL), "--model", "heston", "--cv", "5", "--out", str(out), "--json", str(js))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(js.read_text())
    assert set(report) == {"surface", "heston"}
    for name, r in report.items():
        for key in ("rmse_iv", "inside_spread_pct", "arbitrage_violations", "fit_ms", "quotes_used", "params",
                    "inside_spread_pct_cv", "rmse_iv_cv"):
            assert key in r, (name, key)
    assert report["surface"]["arbitrage_violations"] == 0
    assert report["surface"]["inside_spread_pct_cv"] >= 80 and report["surface"]["rmse_iv_cv"] <= 0.2
    assert set(report["heston"]["params"]) == {"v0", "kappa", "theta", "sigma", "rho"}

    with REAL.open() as fh:
        src = list(csv.DictReader(fh))
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(src)
    assert list(rows[0])[:len(src[0])] == list(src[0])
    assert list(rows[0])[len(src[0]):] == ["fair_price", "fair_iv", "model_price", "model_iv", "in_fit"]
    used = [r for r in rows if r["in_fit"] == "1"]
    assert len(used) == report["surface"]["quotes_used"]
    # the written out-of-sample fair values reproduce the JSON's cv share, against the file's own bid/ask
    inside = np.mean([float(r["bid"]) <= float(r["fair_price"]) <= float(r["ask"]) for r in used])
    assert abs(100 * inside - report["surface"]["inside_spread_pct_cv"]) < 1e-3
    # filtered quotes in fitted expiries (in-the-money, wide) carry values too; fair_price = Black-76(fair_iv)
    valued = [r for r in rows if r["fair_iv"]]
    assert sum(r["in_fit"] == "0" for r in valued) > 100
    sample = valued[::50]
    f = np.array([float(r["F_pcp"]) for r in sample])
    d = np.array([float(r["DF_pcp"]) for r in sample])
    k = np.array([float(r["strike"]) for r in sample])
    iv = np.array([float(r["fair_iv"]) for r in sample])
    price = np.array([float(r["fair_price"]) for r in sample])
    call = np.array([r["type"] == "C" for r in sample])
    t = np.array([float(r["T_act365"]) for r in sample])
    # the file's forward/discount/T are the README's (close to ours): agree to a small fraction of the price
    assert np.allclose(black_price(f, k, t, d, iv, call), price, rtol=2e-3, atol=0.3)
    assert all(r["model_iv"] for r in used)


def test_fit_recording_uses_its_last_snapshot(tmp_path):
    from workstation.market.recorder import SnapshotRecorder
    rec = SnapshotRecorder(tmp_path / "rec")
    rec.write(clean_chain())
    rec.close()
    js = tmp_path / "fit.json"
    out = tmp_path / "fit.csv"
    assert main(["fit", str(tmp_path / "rec"), "--json", str(js), "--out", str(out)]) == 0
    report = json.loads(js.read_text())
    assert report["surface"]["inside_spread_pct"] == 100.0 and report["surface"]["arbitrage_violations"] == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(clean_chain())


@pytest.mark.parametrize("content, problem", [
    ("", "empty file"),
    ("snapshot_date,underlying,spot\n2022-06-10,SPX,3900\n", "missing columns"),
    ("snapshot_date,underlying,spot,expiry_or_T,strike,type,bid,ask\n2022-06-10,SPX,3900,2022-07-15,abc,C,1,2\n",
     "abc"),
    ("snapshot_date,underlying,spot,expiry_or_T,strike,type,bid,ask\n2022-06-10,SPX,3900,2022-07-15,3900,C\n",
     "fields"),
])
def test_malformed_file_exits_2_with_one_line(tmp_path, content, problem):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    proc = run(str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and "bad.csv" in lines[0], proc.stderr


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(HAS_MODELS, reason="the Heston-family models are built in this tree")
@pytest.mark.parametrize("model", ["bates", "heston_td"])
def test_unbuilt_model_exits_2(model, capsys):
    assert main(["fit", "whatever.csv", "--model", model]) == 2
    assert f"model {model} not available" in capsys.readouterr().err
