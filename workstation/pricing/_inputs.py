"""Broadcasting of chain inputs: every public function accepts scalars or arrays that broadcast."""
from __future__ import annotations

import numpy as np


def broadcast_chain(*values: object) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast the inputs together; return the common shape and flat contiguous float64 arrays.

    Booleans (is_call) come back as float64 too (1.0 call, 0.0 put): one dtype keeps the kernels simple.
    """
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in values])
    shape = arrays[0].shape
    return shape, [np.ascontiguousarray(a).reshape(-1) for a in arrays]


def shaped(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Give a kernel's flat result the broadcast shape (a 0-d array for scalar inputs)."""
    return flat.reshape(shape)
