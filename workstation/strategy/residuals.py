"""Per-contract history of IV residuals (market mid IV - model IV, in vol points) and their z-scores."""
from __future__ import annotations

import warnings

import numpy as np


class ResidualHistory:
    """A ring buffer per contract, stored as one 2-D array so z-scores are vectorised over the chain."""

    def __init__(self, length: int, floor_vol: float = 0.05) -> None:
        self.length = length
        self.floor = floor_vol
        self._row: dict[int, int] = {}
        self._data = np.full((0, length), np.nan)
        self._pos = np.zeros(0, dtype=np.int64)

    def rows_for(self, contract_ids: np.ndarray) -> np.ndarray:
        """Buffer rows of `contract_ids`, allocating rows for contracts seen for the first time."""
        rows = np.empty(len(contract_ids), dtype=np.int64)
        new = 0
        for i, cid in enumerate(contract_ids.tolist()):
            row = self._row.get(cid)
            if row is None:
                row = self._row[cid] = len(self._row)
                new += 1
            rows[i] = row
        if len(self._row) > len(self._data):
            grow = max(len(self._row) - len(self._data), 256)
            self._data = np.vstack([self._data, np.full((grow, self.length), np.nan)])
            self._pos = np.concatenate([self._pos, np.zeros(grow, dtype=np.int64)])
        return rows

    def zscores(self, contract_ids: np.ndarray, residual: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z of each residual against that contract's history (before adding it): (z, count, median).

        Robust statistics: (r - median) / (1.4826 * MAD), with a floor on the scale so a contract whose
        residual never moved does not produce infinite z-scores from tick noise.
        """
        rows = self.rows_for(contract_ids)
        hist = self._data[rows]
        count = np.sum(np.isfinite(hist), axis=1)
        z = np.full(len(rows), np.nan)
        median = np.full(len(rows), np.nan)
        has = count > 0
        if has.any():
            with warnings.catch_warnings():   # all-NaN rows are handled by `has`
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(hist[has], axis=1)
                mad = np.nanmedian(np.abs(hist[has] - med[:, None]), axis=1)
            scale = np.maximum(1.4826 * mad, self.floor)
            z[has] = (residual[has] - med) / scale
            median[has] = med
        return z, count, median

    def append(self, contract_ids: np.ndarray, residual: np.ndarray) -> None:
        """Add this snapshot's residuals (NaN is stored as 'no observation')."""
        rows = self.rows_for(contract_ids)
        self._data[rows, self._pos[rows] % self.length] = residual
        self._pos[rows] += 1

    def last(self, contract_id: int) -> float:
        """Most recent residual of a contract (NaN if unknown)."""
        row = self._row.get(int(contract_id))
        if row is None or self._pos[row] == 0:
            return float("nan")
        return float(self._data[row, (self._pos[row] - 1) % self.length])
