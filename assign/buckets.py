"""A stable counting sort into buckets (CSR layout), shared by the numba kernels.

Why one place: the flow's split into parts and retrieval's contacts by group both need
items grouped by a small integer key with their original order kept inside each bucket.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def bucket(keys, n_buckets):
    """``(ptr, order)``: the items of bucket ``b`` are ``order[ptr[b]:ptr[b + 1]]``, in index order."""
    ptr = np.zeros(n_buckets + 1, dtype=np.int64)
    for i in range(len(keys)):
        ptr[keys[i] + 1] += 1
    for b in range(n_buckets):
        ptr[b + 1] += ptr[b]
    fill = ptr[:-1].copy()
    order = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        order[fill[keys[i]]] = i
        fill[keys[i]] += 1
    return ptr, order
