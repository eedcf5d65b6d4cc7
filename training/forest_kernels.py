"""The compiled loops behind :class:`fidelite.training.forest.Forest` (numba, GIL released).

Node layout (built by ``training.forest``): internal nodes ``0 .. n_internal - 1``, then
one node per leaf (``n_internal + leaf``). ``child[2 * node + 1]`` is the right child,
``child[2 * node]`` the left; a leaf node is its own child on both sides, so a walk of a
fixed ``depth`` steps per tree ends on the leaf whatever the path's length. Walking a block
of rows level by level (:func:`walk_rows`) keeps the rows' paths independent, so the
processor overlaps them instead of waiting on one mispredicted branch after another (about
a quarter faster than walking one row to its leaf at a time, on the churn model).

A split on a plain numerical feature goes right when ``not value <= threshold``, flipped
for NaN when NaN goes left (``nan_left``: the default direction of a NaN-aware split, or
the side of 0 for a split without missing values, which reads NaN as 0). Every other split
(categorical, zero-as-missing, thresholds within LightGBM's zero threshold) is ``special``
and decided by :func:`goes_right`, a transcription of LightGBM's ``Tree::Decision``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

#: LightGBM's kZeroThreshold (a float literal, 1e-35f, held as a double).
ZERO = float(np.float32(1e-35))
#: Rows walked together through each tree.
BLOCK = 32


def kernel(**options: Any) -> Callable[[Any], Any]:
    """numba's ``njit`` with ``options``, the GIL released, cached on disk where numba
    finds a writable place (else compiled once per process)."""

    def decorate(function: Any) -> Any:
        try:
            return numba.njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:  # no writable cache location
            return numba.njit(nogil=True, **options)(function)

    return decorate


#: Compiled without the GIL, cached on disk where numba finds a writable place.
compiled = kernel()


@compiled
def goes_right(fval, node, threshold, kind, cat_start, cat_len, cat_bits):
    """1 when LightGBM's ``Tree::Decision`` sends ``fval`` right at ``node``, else 0."""
    k = kind[node]
    if k & 1:  # categorical: left when the category's bit is set
        if np.isnan(fval):
            return np.int64(1)
        category = np.int64(fval)  # truncation towards 0, as static_cast<int>
        if category < 0 or (category >> 5) >= cat_len[node]:
            return np.int64(1)
        word = np.int64(cat_bits[cat_start[node] + (category >> 5)])
        return np.int64(1) - ((word >> (category & 31)) & 1)
    missing = (k >> 2) & 3
    default_right = np.int64(0) if k & 2 else np.int64(1)
    if np.isnan(fval):
        if missing == 2:
            return default_right
        fval = 0.0
    elif -ZERO <= fval <= ZERO:  # LightGBM's dense-row reader drops these as zeros
        fval = 0.0
    if missing == 1 and fval == 0.0:
        return default_right
    return np.int64(0) if fval <= threshold[node] else np.int64(1)


@compiled
def walk_rows(start, stop, X, trees, roots, depths, leaf_value, out):
    """Rows ``start .. stop`` of ``X`` through every tree, in blocks of :data:`BLOCK`.

    ``out`` is ``(raw, leaves, keep_leaves, indptr, indices, data, table)``: ``raw[i]``
    gets the leaf values added in tree order from 0; ``leaves[i, t]`` the leaf when
    ``keep_leaves``; ``table[i]`` the CSR rows (indptr, indices, data) of the reached
    leaves added in tree order, when ``table`` has rows.
    """
    child, feature, threshold, nan_left, special, kind, cat_start, cat_len, cat_bits = trees
    raw, leaves, keep_leaves, indptr, indices, data, table = out
    with_table = table.shape[0] > 0
    n_internal = len(feature) - len(leaf_value)
    nodes = np.empty(BLOCK, np.int64)
    total = np.empty(BLOCK, np.float64)
    for first in range(start, stop, BLOCK):
        m = min(BLOCK, stop - first)
        total[:m] = 0.0
        for t in range(len(roots)):
            nodes[:m] = roots[t]
            for _ in range(depths[t]):
                for r in range(m):
                    node = nodes[r]
                    fval = X[first + r, feature[node]]
                    if special[node]:
                        go = goes_right(fval, node, threshold, kind, cat_start, cat_len, cat_bits)
                    else:
                        go = np.int64(not fval <= threshold[node]) ^ (
                            np.int64(fval != fval) & nan_left[node]
                        )
                    nodes[r] = child[2 * node + go]
            for r in range(m):
                leaf = nodes[r] - n_internal
                total[r] += leaf_value[leaf]
                if keep_leaves:
                    leaves[first + r, t] = leaf
                if with_table:
                    for j in range(indptr[leaf], indptr[leaf + 1]):
                        table[first + r, indices[j]] += data[j]
        raw[first : first + m] = total[:m]


@compiled
def binned_rows(start, stop, X, trees, roots, leaf_value, bin_feature, bin_left, n_bins, out):
    """``out[i, b]``: the raw score of row ``[X[i], b]`` for every bin ``b < n_bins``.

    Each tree is walked once per row; at a split on the bin (``bin_feature``) the row's
    set of bins (bits of an int64) splits into those ``bin_left[node]`` sends left and
    the others, and the walk follows each non-empty side. Every bin ends in exactly one
    leaf per tree, added in tree order.
    """
    child, feature, threshold, nan_left, special, kind, cat_start, cat_len, cat_bits = trees
    n_internal = len(feature) - len(leaf_value)
    every = (np.int64(1) << n_bins) - 1
    stack_node = np.empty(64, np.int64)
    stack_bins = np.empty(64, np.int64)
    for i in range(start, stop):
        for t in range(len(roots)):
            stack_node[0], stack_bins[0], waiting = roots[t], every, 1
            while waiting > 0:
                waiting -= 1
                node, bins = stack_node[waiting], stack_bins[waiting]
                while node < n_internal:
                    if feature[node] == bin_feature:
                        left, right = bins & bin_left[node], bins & ~bin_left[node]
                        if left != 0 and right != 0:  # both ways: the right side waits
                            stack_node[waiting], stack_bins[waiting] = child[2 * node + 1], right
                            waiting += 1
                        go, bins = (np.int64(0), left) if left != 0 else (np.int64(1), right)
                    elif special[node]:
                        fval = X[i, feature[node]]
                        go = goes_right(fval, node, threshold, kind, cat_start, cat_len, cat_bits)
                    else:
                        fval = X[i, feature[node]]
                        go = np.int64(not fval <= threshold[node]) ^ (
                            np.int64(fval != fval) & nan_left[node]
                        )
                    node = child[2 * node + go]
                value = leaf_value[node - n_internal]
                for b in range(n_bins):
                    if (bins >> b) & 1:
                        out[i, b] += value


@compiled
def bin_masks(nodes, n_bins, threshold, kind, cat_start, cat_len, cat_bits):
    """Per node of ``nodes``, the bins (bit ``b``: value ``b``) that its split sends left."""
    masks = np.zeros(len(nodes), np.int64)
    for j in range(len(nodes)):
        for b in range(n_bins):
            if goes_right(float(b), nodes[j], threshold, kind, cat_start, cat_len, cat_bits) == 0:
                masks[j] |= np.int64(1) << b
    return masks
