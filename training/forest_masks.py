"""Leaf masks: every split of a tree decided at once, for blocks of rows (QuickScorer).

Number a tree's leaves left to right (in order). A split that sends a row right rules
out every leaf of its left subtree; the leaf the row reaches is the leftmost one that no
split rules out (each leaf left of it lies in the left subtree of a split on its path
that went right, and no split rules it out: that would be a split on its path going
right where the path goes left). So a row's leaf is the lowest set bit of the AND, over
the tree's splits that send it right, of ``~left_leaves`` — the same leaf as walking the
path, whatever the order in which splits are decided.

Deciding all of a tree's splits costs more comparisons than walking one path, but they
are independent of one another: for a block of rows held feature-major (a transposed
copy), a split is one comparison per row in a loop the compiler vectorises, with no
dependent loads, and no walk to the deepest leaf. On the churn model (15-leaf trees)
this is several times faster than :func:`~fidelite.training.forest_kernels.walk_rows`.
Masks are int64 bits: trees of up to :data:`MAX_LEAVES` leaves (others are walked).

Splits decide as in :mod:`~fidelite.training.forest_kernels`: a plain split goes right
when ``not value <= threshold`` (NaN right) or ``value > threshold`` (NaN left, the
``nan_left`` case); special splits call :func:`~fidelite.training.forest_kernels.goes_right`.
"""

from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from fidelite.training.forest_kernels import compiled, goes_right

__all__ = [
    "MAX_LEAVES",
    "MaskLayout",
    "bin_groups",
    "binned_clears",
    "dense_table",
    "mask_binned",
    "mask_rows",
]

#: Most leaves of a tree whose splits are decided by masks (bits of an int64).
MAX_LEAVES = 64
#: Rows decided together (a transposed block of 46 KB for 91 columns: 64 was fastest of 16-128).
BLOCK = 64
#: ``op`` of a split: plain with NaN right, plain with NaN left, special (``goes_right``).
NAN_RIGHT, NAN_LEFT, SPECIAL = 0, 1, 2


class MaskLayout:
    """The per-split arrays the mask kernels take, from a Forest's node arrays.

    Parameters
    ----------
    child : ndarray of int64, shape (2 * n_nodes,)
        ``child[2 * node + side]`` as in :mod:`~fidelite.training.forest_kernels`.
    roots, leaf_offsets : ndarray of int64, shape (n_trees,)
    n_internal : int
        Internal nodes (numbered tree by tree from 0; leaves after them).
    nan_left, special : ndarray, shape (n_nodes,)

    Attributes
    ----------
    tree_nodes : ndarray of int64, shape (n_trees + 1,)
        Tree ``t``'s splits are nodes ``tree_nodes[t] .. tree_nodes[t + 1]``.
    clear : ndarray of int64, shape (n_internal,)
        ``~`` the in-order bits of each split's left-subtree leaves.
    op : ndarray of int64, shape (n_internal,)
        :data:`NAN_RIGHT`, :data:`NAN_LEFT` or :data:`SPECIAL`.
    leaf_order : ndarray of int64, shape (n_leaves,)
        ``leaf_order[leaf_offsets[t] + k]``: the index within tree ``t`` of its ``k``-th
        leaf from the left.
    """

    def __init__(
        self,
        child: np.ndarray,
        roots: np.ndarray,
        leaf_offsets: np.ndarray,
        n_internal: int,
        nan_left: np.ndarray,
        special: np.ndarray,
    ) -> None:
        n_leaves = len(child) // 2 - n_internal
        ends = np.append(leaf_offsets[1:], n_leaves)
        counts = ends - leaf_offsets
        self.fits = bool(len(counts) == 0 or counts.max() <= MAX_LEAVES)
        self.tree_nodes = np.concatenate([[0], np.cumsum(np.maximum(counts - 1, 0))]).astype(
            np.int64
        )
        clear = np.full(n_internal, -1, np.int64)
        order = np.zeros(n_leaves, np.int64)
        if self.fits:
            children = child.reshape(-1, 2).tolist()
            for t, root in enumerate(roots.tolist()):
                _in_order(children, root, n_internal, int(leaf_offsets[t]), clear, order)
        self.clear, self.leaf_order = clear, order
        internal = slice(0, n_internal)
        self.op = np.where(special[internal] != 0, SPECIAL, nan_left[internal]).astype(np.int64)


def _in_order(
    children: list[list[int]],
    root: int,
    n_internal: int,
    offset: int,
    clear: np.ndarray,
    order: np.ndarray,
) -> None:
    """Fill ``order`` (tree's leaves left to right) and ``clear`` of its splits, from
    ``root`` (an explicit stack: a leaf-wise tree can be as deep as it has leaves)."""
    position = 0
    stack: list[tuple[int, bool]] = [(root, False)]
    first: dict[int, int] = {}  # split -> position of its first (leftmost) leaf
    while stack:
        node, left_done = stack.pop()
        if node >= n_internal:
            order[offset + position] = node - n_internal - offset
            position += 1
        elif not left_done:  # descend left; come back once its leaves are numbered
            first[node] = position
            stack.append((node, True))
            stack.append((children[node][0], False))
        else:
            left_bits = ((1 << (position - first[node])) - 1) << first[node]
            clear[node] = np.uint64(~left_bits & (2**64 - 1)).view(np.int64)
            stack.append((children[node][1], False))


@compiled
def _transpose(X, first, m, xt):
    """Rows ``first .. first + m`` of ``X`` into the columns of ``xt`` (as float64)."""
    for r in range(m):
        for f in range(X.shape[1]):
            xt[f, r] = X[first + r, f]


@compiled
def _decide(xt, m, lo, hi, skip, masks, threshold, op, clear, feature, kind, cat):
    """AND into ``masks[:m]`` the ``clear`` of every split ``lo .. hi`` (except splits on
    feature ``skip``) that sends the row right."""
    cat_start, cat_len, cat_bits = cat
    for node in range(lo, hi):
        f = feature[node]
        if f == skip:
            continue
        thr, c, o = threshold[node], clear[node], op[node]
        if o == 0:  # NaN right: not value <= threshold
            for r in range(m):
                masks[r] &= np.int64(-1) if xt[f, r] <= thr else c
        elif o == 1:  # NaN left: value > threshold
            for r in range(m):
                masks[r] &= c if xt[f, r] > thr else np.int64(-1)
        else:
            for r in range(m):
                if goes_right(xt[f, r], node, threshold, kind, cat_start, cat_len, cat_bits):
                    masks[r] &= c


@compiled
def mask_rows(start, stop, X, trees, layout, leaf_value, out):
    """:func:`~fidelite.training.forest_kernels.walk_rows` by leaf masks.

    ``trees`` as for ``walk_rows``; ``layout`` is ``(tree_nodes, op, clear, leaf_order,
    leaf_offsets)`` of a :class:`MaskLayout`; ``out`` is ``(raw, leaves, keep_leaves,
    dense, table)``: as for ``walk_rows`` but the table given by :func:`dense_table`.
    """
    child, feature, threshold, nan_left, special, kind, cat_start, cat_len, cat_bits = trees
    tree_nodes, op, clear, leaf_order, leaf_offsets = layout
    raw, leaves, keep_leaves, dense, table = out
    cat = (cat_start, cat_len, cat_bits)
    with_table = table.shape[0] > 0
    xt = np.empty((X.shape[1], BLOCK), np.float64)
    acc = np.zeros((table.shape[1], BLOCK), np.float64)  # the block's table rows, transposed
    masks = np.empty(BLOCK, np.int64)
    local = np.empty(BLOCK, np.int64)
    total = np.empty(BLOCK, np.float64)
    for first in range(start, stop, BLOCK):
        m = min(BLOCK, stop - first)
        _transpose(X, first, m, xt)
        total[:m] = 0.0
        acc[:, :m] = 0.0
        for t in range(len(leaf_offsets)):
            masks[:m] = -1
            lo, hi = tree_nodes[t], tree_nodes[t + 1]
            _decide(xt, m, lo, hi, -1, masks, threshold, op, clear, feature, kind, cat)
            base = leaf_offsets[t]
            for r in range(m):
                local[r] = leaf_order[base + trailing_zeros(masks[r])]
                total[r] += leaf_value[base + local[r]]
                if keep_leaves:
                    leaves[first + r, t] = base + local[r]
            if with_table:
                _add_dense(t, local, m, dense, acc)
        raw[first : first + m] = total[:m]
        if with_table:
            for r in range(m):
                for c in range(acc.shape[0]):
                    table[first + r, c] = acc[c, r]


@compiled
def _add_dense(t, local, m, dense, acc):
    """Add tree ``t``'s table rows of the ``local`` leaves to ``acc`` (columns x rows)."""
    col_start, cols, value_start, values, n_leaves = dense
    width = n_leaves[t]
    for k in range(col_start[t], col_start[t + 1]):
        row = acc[cols[k]]
        at = value_start[t] + (k - col_start[t]) * width
        for r in range(m):
            row[r] += values[at + local[r]]


@compiled
def mask_binned(start, stop, X, trees, layout, leaf_value, bin_feature, groups, out):
    """:func:`~fidelite.training.forest_kernels.binned_rows` by leaf masks: ``out[i, b]``
    the raw score of row ``[X[i], b]``, for every bin ``b`` (shape (n, n_bins)).

    The splits on the bin are decided once per bin: ``groups`` is :func:`bin_groups`'
    ``(group_clear, bin_group, n_groups)``. Bins whose splits send them the same way share
    a group (1.8 per tree on the hazard model, for 13 bins), so a row finds one leaf per
    group, and each bin adds its group's leaf value, tree by tree.
    """
    child, feature, threshold, nan_left, special, kind, cat_start, cat_len, cat_bits = trees
    tree_nodes, op, clear, leaf_order, leaf_offsets = layout
    group_clear, bin_group, n_groups = groups
    cat = (cat_start, cat_len, cat_bits)
    n_bins = bin_group.shape[1]
    xt = np.empty((max(X.shape[1], 1), BLOCK), np.float64)
    masks = np.empty(BLOCK, np.int64)
    value = np.empty((max(group_clear.shape[1], 1), BLOCK), np.float64)
    acc = np.empty((n_bins, BLOCK), np.float64)  # the block's out rows, transposed
    for first in range(start, stop, BLOCK):
        m = min(BLOCK, stop - first)
        _transpose(X, first, m, xt)
        acc[:, :m] = 0.0
        for t in range(len(leaf_offsets)):
            masks[:m] = -1
            lo, hi = tree_nodes[t], tree_nodes[t + 1]
            _decide(xt, m, lo, hi, bin_feature, masks, threshold, op, clear, feature, kind, cat)
            base = leaf_offsets[t]
            for g in range(n_groups[t]):
                for r in range(m):
                    position = trailing_zeros(masks[r] & group_clear[t, g])
                    value[g, r] = leaf_value[base + leaf_order[base + position]]
            for b in range(n_bins):
                row, of = acc[b], value[bin_group[t, b]]
                for r in range(m):
                    row[r] += of[r]
        for r in range(m):
            for b in range(n_bins):
                out[first + r, b] = acc[b, r]


def bin_groups(bin_clear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bins of each tree grouped by their ``bin_clear`` (:func:`binned_clears`):
    ``group_clear`` (n_trees, most groups), ``bin_group`` (n_trees, n_bins) and
    ``n_groups`` (n_trees,), int64, for :func:`mask_binned`."""
    n_trees, n_bins = bin_clear.shape
    rows = [np.unique(row, return_inverse=True) for row in bin_clear]
    most = max((len(distinct) for distinct, _ in rows), default=1)
    group_clear = np.full((n_trees, most), -1, np.int64)
    bin_group = np.zeros((n_trees, n_bins), np.int64)
    n_groups = np.zeros(n_trees, np.int64)
    for t, (distinct, inverse) in enumerate(rows):
        group_clear[t, : len(distinct)] = distinct
        bin_group[t] = inverse.reshape(-1)
        n_groups[t] = len(distinct)
    return group_clear, bin_group, n_groups


def binned_clears(
    layout: MaskLayout, bin_nodes: np.ndarray, masks: np.ndarray, n_bins: int
) -> np.ndarray:
    """``bin_clear`` of :func:`mask_binned`, shape (n_trees, n_bins), int64.

    Parameters
    ----------
    bin_nodes : ndarray of int64, shape (k,)
        The splits on the bin.
    masks : ndarray of int64, shape (k,)
        Bits of the bins each sends left (``forest_kernels.bin_masks``).
    """
    n_trees = len(layout.tree_nodes) - 1
    tree_of = np.searchsorted(layout.tree_nodes, bin_nodes, side="right") - 1
    out = np.full((n_trees, n_bins), -1, np.int64)
    for node, tree, left in zip(bin_nodes.tolist(), tree_of.tolist(), masks.tolist(), strict=True):
        for b in range(n_bins):
            if not (left >> b) & 1:
                out[tree, b] &= layout.clear[node]
    return out


def dense_table(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, leaf_offsets: np.ndarray
) -> tuple[np.ndarray, ...] | None:
    """A leaf table (CSR, leaves x columns) as each tree's dense block, for :func:`mask_rows`.

    Tree ``t`` keeps the columns any of its leaves has (``cols[col_start[t] ..
    col_start[t + 1]]``) and, per such column, one value per leaf (0.0 where the CSR has
    none) from ``values[value_start[t]]``. Adding a whole column per tree is a loop of
    fixed length over the block's rows, with no address that waits on a leaf's row of
    the CSR: ~2.5x the additions of the sparse rows in about half their time. Adding
    ``+0.0`` leaves every bit as it was (a sum that starts at ``+0.0`` is never ``-0.0``).

    Returns
    -------
    (col_start, cols, value_start, values, n_leaves), or None when a CSR row repeats a
    column (its entries would be added one by one; the walk does that).
    """
    indptr, indices = np.asarray(indptr, np.int64), np.asarray(indices, np.int64)
    data = np.asarray(data, np.float64)
    n_leaves = len(indptr) - 1
    leaf_of = np.repeat(np.arange(n_leaves), np.diff(indptr))
    pairs = leaf_of * (int(indices.max(initial=0)) + 1) + indices
    if len(np.unique(pairs)) != len(pairs):
        return None
    sizes = np.diff(np.append(leaf_offsets, n_leaves)).astype(np.int64)
    tree_of = np.repeat(np.arange(len(sizes)), sizes)[leaf_of]
    col_start, cols, value_start, values = [0], [], [0], []
    for t in range(len(sizes)):
        mine = tree_of == t
        used = np.unique(indices[mine])
        block = np.zeros((len(used), sizes[t]))
        block[np.searchsorted(used, indices[mine]), leaf_of[mine] - leaf_offsets[t]] = data[mine]
        cols.append(used)
        values.append(block.ravel())
        col_start.append(col_start[-1] + len(used))
        value_start.append(value_start[-1] + block.size)
    return (
        np.asarray(col_start, np.int64),
        np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, np.int64),
        np.asarray(value_start, np.int64),
        np.concatenate(values) if values else np.zeros(0),
        sizes,
    )
