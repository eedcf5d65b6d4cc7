"""LightGBM trees evaluated by compiled loops, for large batches.

``Booster.predict`` walks about 40 ns per tree and row on the serving machine, and the
scoring of 10,000 customers walks ~550 trees for each of them, several times (the churn
leaves, their contributions through a sparse product, spend, the hazard's 13
customer-bin rows). :class:`Forest` holds a model's trees as flat arrays (parsed from
LightGBM's own model text) and evaluates them in numba-compiled loops that do in one pass
what took several. Trees of up to 64 leaves (all of ours) are decided by leaf masks
(:mod:`~fidelite.training.forest_masks`: every split of a tree for a block of rows,
vectorised; ~3x faster than walking), larger ones walked level by level
(:mod:`~fidelite.training.forest_kernels`):

* :meth:`Forest.raw_score`: the trees' raw score, added tree by tree from 0 as LightGBM
  does (the same bits as ``Booster.predict(raw_score=True)``);
* :meth:`Forest.raw_and_contributions`: the raw score and each row's contributions from
  a per-leaf table (:class:`~fidelite.training.attribution.PathAttribution`'s), added
  tree by tree as the sparse product did (same bits);
* :meth:`Forest.binned_raw`: the raw score of every (customer, bin) row of the hazard
  model without building those rows: a tree is walked once per customer, following both
  branches only at splits on the bin (a set of bins per branch), so a customer costs
  about one walk per tree instead of 13; each bin's sum is in LightGBM's tree order.

Each split decides as LightGBM's ``Tree::NumericalDecision`` / ``CategoricalDecision``
(missing types None/zero/NaN, default directions, category bitsets; values within
LightGBM's zero threshold read as 0 as its dense-row reader does; the loops are in
:mod:`~fidelite.training.forest_kernels`); the tests compare leaves and scores with
LightGBM's own on random, missing, categorical and edge values. Rows are split across
threads for large batches (the loops release the GIL). The compiled code is cached on disk
when the package's folder is writable (else compiled once per process, a few seconds).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from fidelite.training import forest_kernels as kernels
from fidelite.training import forest_masks as masked
from fidelite.training.threads import LazyPool

__all__ = ["FOREST_MIN_ROWS", "MAX_BINS", "Forest", "run_rows", "warm_up"]

#: Batches of at least this many rows are scored by a Forest (fewer: LightGBM's own
#: predictors, whose one-row C API is cheaper than a compiled call's set-up).
FOREST_MIN_ROWS = 64
#: Batches of at least this many rows are split across two threads (below, the calling
#: thread alone: handing work to a thread costs more than it wins).
PARALLEL_MIN_ROWS = 2048
#: Most hazard bins :meth:`Forest.binned_raw` takes (bins are bits of one int64).
MAX_BINS = 62

_NO_LEAVES = np.zeros((0, 0), np.int64)
#: ``_walk``'s table argument when there is none: (CSR table, output).
_NO_TABLE = (None, np.zeros((0, 0)))
_NO_CSR = (np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0))
_ONE = np.zeros(1, np.int64)
_NO_DENSE = (_ONE, np.zeros(0, np.int64), _ONE, np.zeros(0), np.zeros(0, np.int64))


def _csr(table: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a CSR matrix as the walk takes them."""
    return (
        np.asarray(table.indptr, np.int64),
        np.asarray(table.indices, np.int64),
        np.asarray(table.data, np.float64),
    )


def _threads() -> int:
    try:
        return max(1, min(2, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return max(1, min(2, os.cpu_count() or 1))


_POOL = LazyPool(2, "forest")


def run_rows(kernel: Any, n: int, *args: Any) -> None:
    """``kernel(start, stop, *args)`` (compiled, GIL released) over rows 0..n, split
    across threads when large."""
    threads = _threads() if n >= PARALLEL_MIN_ROWS else 1
    if threads == 1:
        kernel(0, n, *args)
        return
    pool = _POOL.get()
    cuts = np.linspace(0, n, threads + 1).astype(int).tolist()
    jobs = [pool.submit(kernel, a, b, *args) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    for job in jobs:
        job.result()


_WARM = threading.Event()


def warm_up() -> None:
    """Compile the loops now (numba's disk cache makes this ~0.2 s after the first time;
    without it a few seconds), so that no request pays for it. Once per process."""
    if _WARM.is_set():
        return
    import lightgbm as lgb
    from scipy import sparse

    rows = np.column_stack([np.arange(64.0) % 7, np.arange(64) % 4]).astype(float)
    settings = {"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 4, "verbose": -1}
    labels = (rows.sum(axis=1) > 4).astype(int)
    data = lgb.Dataset(rows, labels, params={"verbose": -1})
    forest = Forest.from_booster(lgb.train({**settings, "num_threads": 1}, data, 2))
    forest.leaves(rows)
    table = sparse.csr_matrix(np.ones((len(forest.leaf_value), 2)))
    forest.raw_and_contributions(rows, table, 2)
    forest.binned_raw(rows[:, :1], 1, 4)
    _WARM.set()


class Forest:
    """A single-output LightGBM model's trees as flat arrays, walked by compiled loops.

    Build with :meth:`from_booster`. Leaves are numbered as
    :class:`~fidelite.training.attribution.PathAttribution` numbers them: tree ``t``'s
    leaf ``j`` is ``leaf_offsets[t] + j``.
    """

    def __init__(self, text: str) -> None:
        fields, self.n_features = _parse(text)
        self.leaf_value = fields["leaf_value"]
        self.leaf_offsets = fields["leaf_offsets"]
        self.roots, self.depths = fields["roots"], fields["depths"]
        self.feature = fields["feature"]
        self._trees = tuple(fields[k] for k in _TREE_FIELDS)
        self._bin_masks: dict[int, np.ndarray] = {}
        n_internal = len(self.feature) - len(self.leaf_value)
        layout = masked.MaskLayout(
            fields["child"],
            self.roots,
            self.leaf_offsets,
            n_internal,
            fields["nan_left"],
            fields["special"],
        )
        #: Decide splits by leaf masks (:mod:`forest_masks`) when every tree fits in them.
        self.use_masks = layout.fits
        self._layout = layout
        self._mask_arrays = (
            layout.tree_nodes,
            layout.op,
            layout.clear,
            layout.leaf_order,
            self.leaf_offsets,
        )
        self._bin_clears: dict[int, tuple[np.ndarray, ...]] = {}

    @classmethod
    def from_booster(cls, booster: Any, num_iteration: int | None = None) -> Forest:
        """The trees of ``booster`` (the first ``num_iteration``; None or <= 0: all)."""
        iterations = -1 if num_iteration is None or num_iteration <= 0 else int(num_iteration)
        return cls(booster.model_to_string(num_iteration=iterations))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def _matrix(self, X: np.ndarray, columns: int | None = None) -> np.ndarray:
        X = np.asarray(X)
        columns = self.n_features if columns is None else columns
        if X.ndim != 2 or X.shape[1] != columns:
            raise ValueError(f"expected a matrix of {columns} columns, got shape {X.shape}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(float)
        return np.ascontiguousarray(X)

    def _walk(self, X: np.ndarray, leaves: np.ndarray, table: tuple) -> np.ndarray:
        X = self._matrix(X)
        raw = np.zeros(len(X))
        keep = leaves.shape[0] > 0
        dense = self.table_blocks(table[0]) if self.use_masks else None
        if dense is not None:
            out = (raw, leaves, keep, dense, table[1])
            run_rows(
                masked.mask_rows, len(X), X, self._trees, self._mask_arrays, self.leaf_value, out
            )
            return raw
        csr = _NO_CSR if table[0] is None else _csr(table[0])
        walked = (
            X,
            self._trees,
            self.roots,
            self.depths,
            self.leaf_value,
            (raw, leaves, keep, *csr, table[1]),
        )
        run_rows(kernels.walk_rows, len(X), *walked)
        return raw

    def table_blocks(self, table: Any) -> tuple[np.ndarray, ...] | None:
        """:func:`forest_masks.dense_table` of a CSR ``table`` (None: no table), kept for
        the last table seen (call at load: tens of milliseconds for a model's table)."""
        if table is None:
            return _NO_DENSE
        kept = self.__dict__.get("_dense_table")
        if kept is None or kept[0] is not table:
            blocks = masked.dense_table(table.indptr, table.indices, table.data, self.leaf_offsets)
            kept = self._dense_table = (table, blocks)
        return kept[1]

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """``Booster.predict(X, raw_score=True)``, shape (n,), same bits."""
        return self._walk(X, _NO_LEAVES, _NO_TABLE)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf index of each row in each tree, shape (n, n_trees), int64."""
        leaves = np.empty((len(X), self.n_trees), np.int64)
        if len(X):
            self._walk(X, leaves, _NO_TABLE)
        return leaves

    def raw_and_contributions(
        self, X: np.ndarray, table: Any, n_columns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw score (n,) and the sum over trees of ``table``'s row of each reached leaf,
        shape (n, n_columns), added in tree order; ``table`` is a CSR matrix (leaves x
        columns)."""
        out = np.zeros((len(X), n_columns))
        return self._walk(X, _NO_LEAVES, (table, out)), out

    def binned_raw(self, X: np.ndarray, bin_feature: int, n_bins: int) -> np.ndarray:
        """Raw score of the rows ``[X[i], b]`` (``b`` at column ``bin_feature``, the last)
        for every row ``i`` and bin ``b < n_bins``, shape (n, n_bins), without building them.

        Same sums, in the same order, as ``raw_score`` of those rows.
        """
        if not 0 < n_bins <= MAX_BINS:
            raise ValueError(f"binned_raw handles 1..{MAX_BINS} bins, not {n_bins}")
        if bin_feature != self.n_features - 1:
            raise ValueError("the bin must be the model's last column")
        X = self._matrix(X, bin_feature)
        out = np.zeros((len(X), n_bins))
        if self.use_masks:
            clears = self._clears(bin_feature, n_bins)
            trees = (X, self._trees, self._mask_arrays, self.leaf_value, bin_feature, clears, out)
            run_rows(masked.mask_binned, len(X), *trees)
            return out
        masks = self._masks(bin_feature, n_bins)
        args = (X, self._trees, self.roots, self.leaf_value, bin_feature, masks, n_bins, out)
        run_rows(kernels.binned_rows, len(X), *args)
        return out

    def _clears(self, bin_feature: int, n_bins: int) -> tuple[np.ndarray, ...]:
        """``groups`` of :func:`forest_masks.mask_binned` (per tree and bin), cached."""
        if n_bins not in self._bin_clears:
            masks = self._masks(bin_feature, n_bins)
            nodes = np.flatnonzero(self.feature[: len(self._layout.op)] == bin_feature)
            clears = masked.binned_clears(self._layout, nodes, masks[nodes], n_bins)
            self._bin_clears[n_bins] = masked.bin_groups(clears)
        return self._bin_clears[n_bins]

    def _masks(self, bin_feature: int, n_bins: int) -> np.ndarray:
        """Bins each node sends left, for nodes splitting on ``bin_feature`` (else 0)."""
        if n_bins not in self._bin_masks:
            n_internal = len(self.feature) - len(self.leaf_value)
            nodes = np.flatnonzero(self.feature[:n_internal] == bin_feature)
            masks = np.zeros(len(self.feature), np.int64)
            threshold, kind, cat_start, cat_len, cat_bits = (
                self._trees[i] for i in (2, 5, 6, 7, 8)
            )
            masks[nodes] = kernels.bin_masks(
                nodes, n_bins, threshold, kind, cat_start, cat_len, cat_bits
            )
            self._bin_masks[n_bins] = masks
        return self._bin_masks[n_bins]


#: The node arrays the kernels take, in their order.
_TREE_FIELDS = (
    "child",
    "feature",
    "threshold",
    "nan_left",
    "special",
    "kind",
    "cat_start",
    "cat_len",
    "cat_bits",
)


def _numbers(fields: dict[str, str], key: str) -> np.ndarray:
    text = fields.get(key, "").strip()
    return np.array(text.split(), dtype=float) if text else np.zeros(0)


def _tree_blocks(text: str) -> tuple[int, list[dict[str, str]]]:
    """The feature count and each tree's ``key=value`` fields of a LightGBM model text."""
    start, end = text.index("Tree="), text.index("end of trees")
    header = dict(line.split("=", 1) for line in text[:start].splitlines() if "=" in line)
    if int(header.get("num_tree_per_iteration", "1")) != 1:
        raise ValueError("Forest supports single-output models only")
    trees = []
    for block in text[start:end].split("Tree=")[1:]:
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if int(fields.get("is_linear", "0")):
            raise ValueError("Forest does not evaluate linear trees")
        trees.append(fields)
    return int(header["max_feature_idx"]) + 1, trees


def _parse(text: str) -> tuple[dict[str, np.ndarray], int]:
    """The node layout of :mod:`~fidelite.training.forest_kernels` from a model text."""
    n_features, trees = _tree_blocks(text)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("child", "feature", "threshold", "kind")}
    parts |= {"cat_start": [], "cat_len": [], "leaf_value": []}
    bits, roots, leaf_offsets = [], [], []
    n_internal = sum(int(fields["num_leaves"]) - 1 for fields in trees)
    nodes = leaves = words = 0
    for fields in trees:
        n_leaves = int(fields["num_leaves"])
        values = _numbers(fields, "leaf_value")
        if len(values) != n_leaves:
            raise ValueError("model text: leaf_value does not match num_leaves")
        leaf_offsets.append(leaves)
        parts["leaf_value"].append(values)
        roots.append(nodes if n_leaves > 1 else n_internal + leaves)
        if n_leaves > 1:
            sides = [_numbers(fields, k).astype(np.int64) for k in ("left_child", "right_child")]
            left, right = (np.where(c >= 0, c + nodes, n_internal + leaves + ~c) for c in sides)
            parts["child"].append(np.column_stack([left, right]).ravel())
            parts["feature"].append(_numbers(fields, "split_feature").astype(np.int64))
            threshold = _numbers(fields, "threshold")
            parts["threshold"].append(threshold)
            kind = _numbers(fields, "decision_type").astype(np.int64)
            parts["kind"].append(kind)
            bounds = _numbers(fields, "cat_boundaries").astype(np.int64)
            index = np.where(kind & 1 == 1, threshold, 0).astype(np.int64)
            has = (kind & 1 == 1) & (len(bounds) > 0)
            first = bounds[np.minimum(index, len(bounds) - 1)] if len(bounds) else index * 0
            after = bounds[np.minimum(index + 1, len(bounds) - 1)] if len(bounds) else index * 0
            parts["cat_start"].append(np.where(has, first + words, 0))
            parts["cat_len"].append(np.where(has, after - first, 0))
            bits.append(_numbers(fields, "cat_threshold").astype(np.int64))
            words += len(bits[-1])
            nodes += n_leaves - 1
        leaves += n_leaves
    leaf_nodes = n_internal + np.arange(leaves)
    flat = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in parts.items()}
    flat["child"] = np.concatenate([flat["child"], np.repeat(leaf_nodes, 2)]).astype(np.int64)
    for key, dtype in (("feature", np.int64), ("threshold", float), ("kind", np.int64)):
        flat[key] = np.concatenate([flat[key], np.zeros(leaves)]).astype(dtype)
    for key in ("cat_start", "cat_len"):
        flat[key] = np.concatenate([flat[key], np.zeros(leaves)]).astype(np.int64)
    flat["leaf_value"] = flat["leaf_value"].astype(float)
    flat["cat_bits"] = np.concatenate(bits).astype(np.uint32) if bits else np.zeros(0, np.uint32)
    flat.update(_decisions(flat["threshold"], flat["kind"], n_internal))
    flat["roots"] = np.asarray(roots, np.int64)
    flat["leaf_offsets"] = np.asarray(leaf_offsets, np.int64)
    flat["depths"] = _depths(flat["child"], flat["roots"], n_internal)
    return flat, n_features


def _decisions(threshold: np.ndarray, kind: np.ndarray, n_internal: int) -> dict[str, np.ndarray]:
    """``nan_left`` and ``special`` of every node (see :mod:`forest_kernels`)."""
    missing = (kind >> 2) & 3
    default_left = (kind & 2) != 0
    nan_left = np.where(missing == 2, default_left, threshold >= 0.0)  # None: NaN reads as 0
    special = ((kind & 1) == 1) | (missing == 1) | (np.abs(threshold) <= kernels.ZERO)
    special[n_internal:] = False  # leaf nodes: both children are the leaf
    return {"nan_left": nan_left.astype(np.int64), "special": special.astype(np.uint8)}


def _depths(child: np.ndarray, roots: np.ndarray, n_internal: int) -> np.ndarray:
    """Steps from each tree's root to its deepest leaf."""
    depths = np.zeros(len(roots), np.int64)
    for t, root in enumerate(roots.tolist()):
        level, frontier = 0, [root]
        while any(node < n_internal for node in frontier):
            frontier = [
                c
                for node in frontier
                if node < n_internal
                for c in child[2 * node : 2 * node + 2].tolist()
            ]
            level += 1
        depths[t] = level
    return depths
