"""Data files (issue #16): corrupt or truncated recordings and CSVs refused with a line naming the file (and the
line), bad rows skipped and counted by reason, a bad snapshot skipped in a backtest; the headless summary's
`quality` counts."""
from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chain_support import simulated_snapshots

from workstation import bus as topics
from workstation.backtest.runner import run
from workstation.bus import EventBus
from workstation.cli import main
from workstation.config import Settings
from workstation.headless import QualityCounts, format_summary, quality_line
from workstation.market.recorder import SCHEMA, SnapshotRecorder, snapshot_table
from workstation.market.replay import DataFileError, ReadReport, ReplayFeed, read_cboe_csv, read_recording
from workstation.strategy.surface import build_surface

DAY = date(2025, 10, 1)
REAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "spx_2022-06-10_cboe.csv"
HEADER = "snapshot_date,underlying,spot,expiry_or_T,strike,type,bid,ask,mid,iv,root\n"


@pytest.fixture(autouse=True)
def no_global_log_handlers(monkeypatch):
    """cli.main installs root log handlers once per process (on this test's captured stderr, closed after it):
    keep them out so each test sees only its own stderr."""
    from workstation import logging_setup
    monkeypatch.setattr(logging_setup, "_configured", True)


# ------------------------------------------------------------------------------------------ recordings


@pytest.fixture(scope="module")
def snaps():
    return asyncio.run(simulated_snapshots(6, DAY))


@pytest.fixture
def recording(snaps, tmp_path) -> Path:
    out = tmp_path / "rec"
    with SnapshotRecorder(out) as rec:
        for snap in snaps:
            rec.write(snap)
    return out


def parquet_file(recording: Path) -> Path:
    (file,) = sorted(recording.rglob("*.parquet"))
    return file


def test_truncated_recording_is_refused_naming_the_file(recording, tmp_path, capsys):
    file = parquet_file(recording)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=rf"{file}: not a readable Parquet recording \(.*\): the file is corrupt "
                                            "or truncated"):
        list(read_recording(recording))
    with pytest.raises(DataFileError, match=str(file)):
        asyncio.run(ReplayFeed(recording).connect())            # the live replay feed refuses it before starting
    assert main(["backtest", str(recording), "--out", str(tmp_path / "out")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(("backtest:", "error:"))]
    assert len(err) == 1 and err[0].startswith(f"backtest: {file}: not a readable Parquet recording")
    assert not (tmp_path / "out").exists()


def test_corrupt_recording_middle_is_refused_naming_the_file(recording, tmp_path, capsys):
    """Bytes garbled inside the data pages (footer intact): refused when the snapshot is read, not replayed
    half-garbled; the CLI still exits 2 with one line."""
    file = parquet_file(recording)
    meta = pq.ParquetFile(file).metadata
    chunk = meta.row_group(2).column(SCHEMA.names.index("bid"))
    start = chunk.data_page_offset
    data = bytearray(file.read_bytes())
    data[start + 8: start + 8 + 64] = bytes(range(64))[::-1] * 1
    file.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=rf"{file}: snapshot 3 \(row group 2\) cannot be read"):
        list(read_recording(recording))
    assert main(["backtest", str(recording), "--out", str(tmp_path / "out")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln or "backtest:" in ln]
    assert len(err) == 1 and str(file) in err[0] and "cannot be read" in err[0]


def test_one_bad_snapshot_is_skipped_and_counted_not_fatal(snaps, tmp_path, capsys):
    out = tmp_path / "rec" / "date=2025-10-01"
    out.mkdir(parents=True)
    with pq.ParquetWriter(out / "sim-093000.parquet", SCHEMA.with_metadata({b"source": b"sim"})) as writer:
        for i, snap in enumerate(snaps):
            table = snapshot_table(snap)
            if i == 3:                                            # the case: spot 0 in one snapshot
                col = table.schema.get_field_index("underlying_price")
                table = table.set_column(col, "underlying_price", pa.array([0.0] * len(table), pa.float64()))
            writer.write_table(table)
    report = ReadReport()
    assert len(list(read_recording(tmp_path / "rec", report))) == len(snaps) - 1
    assert report.skipped == {"bad_snapshot": 1}
    assert "snapshot 4: bad_snapshot: ChainSnapshot.underlying_price must be > 0, got 0.0" in report.examples[0]
    result = run(Settings(), tmp_path / "rec")
    assert result.snapshots == len(snaps) - 1 and result.skipped == {"bad_snapshot": 1}
    assert main(["backtest", str(tmp_path / "rec"), "--out", str(tmp_path / "out")]) == 0
    assert "data: 1 skipped (bad_snapshot 1); first: sim-093000.parquet snapshot 4" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- CSVs
def chain_rows(n_strikes: int = 12) -> list[str]:
    """A small clean chain: one expiry, calls and puts around 3,900."""
    rows = []
    for k in range(n_strikes):
        strike = 3700 + 25 * k
        for kind in ("C", "P"):
            intrinsic = max(0.0, (3900 - strike) if kind == "C" else (strike - 3900))
            bid = round(intrinsic + 20.0, 1)
            rows.append(f"2022-06-10,SPX,3900.86,2022-07-15,{strike},{kind},{bid},{bid + 1.0},{bid + 0.5},0.3,SPX")
    return rows


def write_csv(path: Path, rows: list[str], ending: str = "\n") -> Path:
    path.write_text(HEADER + "\n".join(rows) + ending, encoding="utf-8")
    return path


def read(path: Path) -> tuple[int, ReadReport]:
    report = ReadReport()
    return len(read_cboe_csv(path, report)), report


def test_clean_chain_reads_every_row(tmp_path):
    n, report = read(write_csv(tmp_path / "c.csv", chain_rows()))
    assert n == 24 and report.total == 0


@pytest.mark.parametrize("change, reason, detail", [
    (lambda r: r.replace(",3725,C,", ",abc,C,"), "bad_strike", "strike 'abc' is not a number"),
    (lambda r: r.replace(",3725,C,", ",-5,C,"), "bad_strike", "strike '-5' must be a finite number > 0"),
    (lambda r: r.replace(",3725,C,", ",3725,X,"), "bad_type", "type 'X' is not C or P"),
    (lambda r: r.replace("2022-07-15,3725", "2022-13-45,3725"), "bad_expiry", "expiry '2022-13-45' is not a date"),
    (lambda r: r.replace("2022-07-15,3725", "2022-06-01,3725"), "bad_expiry", "before the snapshot date"),
    (lambda r: r.replace(",3725,C,195.0,", ",3725,C,nan,"), "bad_quote", "bid 'nan' must be a finite number"),
    (lambda r: r.replace("3900.86,2022-07-15,3725,C", "3911.00,2022-07-15,3725,C"), "mixed_snapshot", "differs"),
    (lambda r: r.replace(",3725,C,", ",3725,C,1,"), "bad_row", "12 fields, expected 11"),
])
def test_a_bad_row_is_skipped_counted_and_named(tmp_path, change, reason, detail):
    rows = chain_rows()
    row = next(i for i, r in enumerate(rows) if ",3725,C," in r)
    rows[row] = change(rows[row])
    n, report = read(write_csv(tmp_path / "c.csv", rows))
    assert n == 23 and report.skipped == {reason: 1}
    assert report.examples[0].startswith(f"c.csv, line {row + 2}: {reason}: ") and detail in report.examples[0]


def test_file_cut_mid_row_loses_only_the_partial_last_row(tmp_path):
    text = HEADER + "\n".join(chain_rows())
    path = tmp_path / "cut.csv"
    path.write_text(text[: text.rindex(",") - 8])                # cut inside the last row, no final newline
    n, report = read(path)
    assert n == 23 and report.skipped == {"bad_row": 1}
    assert "(the file ends mid-row)" in report.examples[0] and "line 25" in report.examples[0]


def test_conflicting_duplicates_drop_every_copy(tmp_path):
    rows = chain_rows()
    fields = rows[4].split(",")
    fields[6] = str(float(fields[6]) + 5.0)
    rows.append(",".join(fields))                                 # the same contract quoted differently
    rows.append(rows[6])                                          # an exact repeat: one copy kept
    n, report = read(write_csv(tmp_path / "d.csv", rows))
    assert n == 23 and report.skipped == {"conflicting_duplicate": 2, "duplicate": 1}
    assert any("lines 6, 26" in e and "quoted 2 times with different bid/ask" in e for e in report.examples)


@pytest.mark.parametrize("name, rows, content, expect", [
    ("every row duplicated", chain_rows() * 2, None, "24 of 48 rows skipped (24 skipped: duplicate 24"),
    ("every type X", [r.replace(",C,", ",X,").replace(",P,", ",X,") for r in chain_rows()], None,
     "no usable quotes (24 skipped: bad_type 24"),
    ("most rows bad", [r.replace(",C,", ",X,").replace(",P,", ",X,") for r in chain_rows()[:20]]
     + chain_rows()[20:], None, "20 of 24 rows skipped (20 skipped: bad_type 20"),
    ("non-UTF-8", None, (HEADER + "\n".join(chain_rows()[:3]) + "\n").encode() + b"2022-06-10,SPX,3900.86,"
     b"2022-07-15,3800,C,1,2,1.5,0.3,SP\xe9X\n", ", line 5: not UTF-8 text (byte 0xe9)"),
    ("missing column", None, b"snapshot_date,underlying,spot,strike,type,bid,ask\n2022-06-10,SPX,1,2,C,1,2\n",
     ", line 1: not a Cboe quotes CSV, missing columns ['expiry_or_T']"),
    ("empty", None, b"", ": empty file, no quotes"),
    ("header only", None, HEADER.encode(), ": no usable quotes"),
    ("NUL byte", None, HEADER.encode() + b"2022-06-10,SPX,3900.86,2022-07-15,38\x0000,C,1,2,1.5,0.3,SPX\n",
     "no usable quotes (1 skipped: bad_strike 1"),
])
def test_unusable_csv_is_refused_naming_the_file(tmp_path, capsys, name, rows, content, expect):
    path = tmp_path / "bad.csv"
    if rows is not None:
        write_csv(path, rows)
    else:
        path.write_bytes(content)
    with pytest.raises(DataFileError) as err:
        read_cboe_csv(path)
    assert str(err.value).startswith(str(path)) and expect in str(err.value)
    assert main(["backtest", str(path), "--out", str(tmp_path / "out")]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(("backtest:", "error:"))]
    assert lines == [f"backtest: {err.value}"] and "Traceback" not in "\n".join(lines)


@pytest.mark.skipif(not REAL_CSV.exists(), reason="real Cboe chain not present")
def test_real_chain_with_one_bad_strike_keeps_the_other_18155_quotes(tmp_path, capsys):
    lines = REAL_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[1234].split(",")
    fields[4] = "abc"
    lines[1234] = ",".join(fields)
    path = tmp_path / "one_bad.csv"
    path.write_text("".join(lines), encoding="utf-8")
    clean = read_cboe_csv(REAL_CSV)
    n, report = read(path)
    assert (len(clean), n) == (18_156, 18_155)
    assert report.skipped == {"bad_strike": 1} and report.examples == [
        "one_bad.csv, line 1235: bad_strike: strike 'abc' is not a number"]
    assert main(["backtest", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "data: 1 skipped (bad_strike 1); first: one_bad.csv, line 1235" in capsys.readouterr().out


# --------------------------------------------------------------------------------- headless `quality`
def test_quality_counts_of_real_surfaces_sum_to_the_quotes_seen(snaps):
    s = Settings()
    bus = EventBus()
    counts = QualityCounts(bus)
    surfaces = [build_surface(snap, s.market, s.calibration) for snap in snaps[:2]]
    for surface in surfaces:
        bus.publish(topics.SURFACE, surface)
    quality = counts.as_dict()
    assert quality["snapshots"] == 2 and quality["quotes"] == sum(len(snap) for snap in snaps[:2])
    assert quality["usable"] == sum(int(surface.usable.sum()) for surface in surfaces)
    assert quality["usable"] + sum(quality["filtered"].values()) == quality["quotes"]


def test_quality_counts_from_the_bus_reach_the_summary_line():
    bus = EventBus()
    counts = QualityCounts(bus)
    for c in ({"OK": 90, "NO_BID": 6, "CROSSED": 1, "TOO_WIDE": 3}, {"OK": 95, "NO_BID": 5}):
        bus.publish(topics.SURFACE, SimpleNamespace(filter_counts=c))
    quality = counts.as_dict()
    assert quality == {"snapshots": 2, "quotes": 200, "usable": 185,
                       "filtered": {"no_bid": 11, "too_wide": 3, "crossed": 1}}
    assert quality_line(quality) == ("quality: 200 quotes in 2 snapshots, 92.5% usable; "
                                     "filtered no_bid 11, too_wide 3, crossed 1")
    summary = {"snapshots": 2, "skipped_snapshots": 0, "fits": {"count": 0, "accepted": 0, "median_ms": None,
               "p95_ms": None, "median_rmse_iv": None}, "signals": {}, "orders": {}, "fills": 0, "positions": [],
               "pnl": {k: 0.0 for k in ("total", "realized", "unrealized", "commissions", "day")}, "greeks": {},
               "trading_state": "ACTIVE", "alerts": {}, "cycle_ms": {"p50": 1, "p95": 1, "max": 1},
               "quality": quality}
    assert quality_line(quality) in format_summary(summary).splitlines()
