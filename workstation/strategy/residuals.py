"""Per-contract history of IV residuals (market mid IV - model IV, in vol points) and their z-scores."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _median_sorted(buf: np.ndarray, n: int) -> float:
    half = n // 2
    return buf[half] if n % 2 else 0.5 * (buf[half - 1] + buf[half])


@njit(nogil=True, cache=True)
def robust_center_scale(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `hist` (NaN = no observation): count of observations, median and MAD."""
    rows, cols = hist.shape
    count = np.zeros(rows, dtype=np.int64)
    median = np.full(rows, np.nan)
    mad = np.full(rows, np.nan)
    buf = np.empty(cols)
    for i in range(rows):
        n = 0
        for j in range(cols):
            v = hist[i, j]
            if v == v:
                buf[n] = v
                n += 1
        count[i] = n
        if n == 0:
            continue
        b = np.sort(buf[:n])
        m = _median_sorted(b, n)
        for k in range(n):
            b[k] = abs(b[k] - m)
        median[i] = m
        mad[i] = _median_sorted(np.sort(b), n)
    return count, median, mad


class ResidualHistory:
    """A ring buffer per contract, stored as one 2-D array so statistics are vectorised over many contracts."""

    def __init__(self, length: int, floor_vol: float = 0.05) -> None:
        self.length = length
        self.floor = floor_vol
        self._row: dict[int, int] = {}
        self._data = np.full((0, length), np.nan)
        self._pos = np.zeros(0, dtype=np.int64)
        self._last_ids: np.ndarray | None = None
        self._last_rows: np.ndarray | None = None

    def rows_for(self, contract_ids: np.ndarray) -> np.ndarray:
        """Buffer rows of `contract_ids`, allocating rows for contracts seen for the first time.

        Consecutive snapshots of one chain list the same contracts in the same order: that case is a compare."""
        if self._last_ids is not None and np.array_equal(contract_ids, self._last_ids):
            return self._last_rows
        rows = np.empty(len(contract_ids), dtype=np.int64)
        for i, cid in enumerate(contract_ids.tolist()):
            row = self._row.get(cid)
            if row is None:
                row = self._row[cid] = len(self._row)
            rows[i] = row
        if len(self._row) > len(self._data):
            grow = max(len(self._row) - len(self._data), 256)
            self._data = np.vstack([self._data, np.full((grow, self.length), np.nan)])
            self._pos = np.concatenate([self._pos, np.zeros(grow, dtype=np.int64)])
        self._last_ids, self._last_rows = contract_ids.copy(), rows
        return rows

    def zscores(self, rows: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z of each residual against its contract's history (before adding it): (z, count, median).

        Robust statistics: (r - median) / (1.4826 * MAD), with a floor on the scale so a contract whose
        residual never moved does not produce infinite z-scores from tick noise. `rows` from `rows_for`.
        """
        count, median, mad = robust_center_scale(self._data[rows])
        scale = np.maximum(1.4826 * mad, self.floor)
        z = (residual - median) / scale          # NaN where the contract has no history yet
        return z, count, median

    def append(self, rows: np.ndarray, residual: np.ndarray) -> None:
        """Add this snapshot's residuals (NaN is stored as 'no observation')."""
        self._data[rows, self._pos[rows] % self.length] = residual
        self._pos[rows] += 1

    def median(self, contract_id: int) -> float:
        """Median residual of a contract over its history (NaN if unknown)."""
        row = self._row.get(int(contract_id))
        if row is None:
            return float("nan")
        return float(robust_center_scale(self._data[row:row + 1])[1][0])
