"""A LightGBM model as flat numpy arrays, scored and explained by numba kernels.

Why: ``Booster.predict`` walks one row through one tree at a time with a
branch per node, and its TreeSHAP (``pred_contrib``) explains every class with
an O(leaves x depth^2) recursion per tree. Here the booster is read once
(:meth:`TreeEnsemble.from_booster`, the only place that needs LightGBM) into
LightGBM's own per-tree arrays (:meth:`TreeEnsemble.arrays`, plain numpy for
``np.savez``; :meth:`TreeEnsemble.from_arrays` restores them without LightGBM).

Raw scores replay LightGBM's ``NumericalDecision`` without a branch. A row is
first rewritten into two (four with missing type Zero) variants so that every
node only asks ``value <= threshold``: LightGBM's dense-row reader turns
``|x| <= 1e-35f`` into 0.0; a node whose missing values go right reads NaN as
NaN (never ``<=``), one whose missing values go left reads it as -inf (always
``<=``); "missing" is NaN for missing type NaN, NaN or zero for missing type
Zero, and for missing type None a NaN is 0.0, i.e. goes where 0.0 goes.
Leaves loop onto themselves, so a tree takes a fixed number of steps; eight
rows walk a tree together (a lone row walks sixteen trees of similar depth
together), so the core overlaps independent chains of loads instead of
waiting on one. Trees are added in LightGBM's order (iteration by iteration,
each class from 0.0): margins are bit-identical to ``predict(raw_score=True)``.

Contributions are path-dependent TreeSHAP decomposed over leaves. For a leaf
with value v, unique path features F (|F| = D), zero fractions z_j (product
of child/parent training counts over the path's nodes on j) and one fractions
o_j (1 when x follows the path at every node on j), with A = {j : o_j = 1} and
w(s, D) = s! (D-1-s)! / D!::

    phi_i += v (o_i - z_i) sum_{S subset of A-{i}} w(|S|, D) prod_{j in F-{i}-S} z_j

The sum is C g, with C = prod_{j in F-{i}, j not in A} z_j and g the
w-weighted coefficient sum of prod_{j in A-{i}} (z_j + y). With
H(A) = v g(A) prod_{j not in A} z_j this is::

    i in A:     phi_i += (1 - z_i) / z_i * H(A - {i})
    i not in A: phi_i += -H(A)

so a leaf needs one number per agreement set A. Its table is indexed by the
agreement bits of its p path nodes (2^p entries; j is in A when all of j's
nodes agree), which a tree computes top-down with two stores per node; the
tables are built in O(2^p D) by a subset recursion without subtractions, so
small z lose nothing. Tables fill a memory budget (:data:`TABLE_BUDGET`)
smallest first (paths of up to 16 nodes); a leaf left out is computed on the
fly from the same polynomial in O(D^2). Rows of one class go through each tree as a block so
that the tree's tables stay in cache meanwhile (a lone row has a kernel of its
own with flat scratch arrays; both add the same terms in the same order).
All of it is built on the first :meth:`TreeEnsemble.contributions` call (about
15 ms for the default 567-tree model, under 5 MB of tables) and none of it is
part of :meth:`TreeEnsemble.arrays`.

The kernels are ``nogil`` and single-threaded: numba's ``parallel=True``
threading layers are not safe when several server threads call at once, so
``threads > 1`` splits the rows into contiguous slices run on a shared
``ThreadPoolExecutor`` (rows are computed independently, so results do not
depend on ``threads``). In the hot loops every data-dependent choice is
arithmetic or a table load, not a branch (a mispredicted branch costs more
than the work around it), and indices are unsigned (numba adds a
negative-index fix-up to every signed one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numba import njit

__all__ = ["TABLE_BUDGET", "TreeEnsemble", "Unsupported"]

TABLE_BUDGET = 64 << 20
"""Bytes of SHAP leaf tables per ensemble (the default 567-tree model needs under 5 MB)."""

FORMAT = 1
_KZ = float(np.float32(1e-35))  # LightGBM's kZeroThreshold is the float 1e-35f, not the double 1e-35
_MAX_TABLE_DEPTH = 16  # longest tabulated path: building a table needs 2^D (D + 1) doubles of scratch
_ROW_BLOCK = 8  # rows walking one tree together (raw scores)
_TREE_BLOCK = 16  # trees one row walks together (raw scores of the last rows of a batch)
_SHAP_BLOCK = 64  # rows of one class explained together
_MIN_SLICE = 64  # rows per thread below which a thread hop costs more than it saves
_ONE = np.uint64(1)
_STORED = {  # arrays() keys and dtypes: LightGBM's per-tree fields, trees concatenated
    "format": np.int64,
    "n_classes": np.int64,
    "n_features": np.int64,
    "node_start": np.int64,
    "leaf_start": np.int64,
    "split_feature": np.int32,
    "threshold": np.float64,
    "decision_type": np.int8,
    "left_child": np.int32,
    "right_child": np.int32,
    "internal_count": np.int64,
    "leaf_value": np.float64,
    "leaf_count": np.int64,
}


class Unsupported(ValueError):
    """The booster holds something the kernels do not replay (categorical splits, linear trees, ...)."""


def _portable_cache() -> None:
    """With ``$NUMBA_CACHE_DIR`` set, keep these kernels in one folder there whatever the path of this file.

    numba files a cache under a hash of the source's folder, so each copy of painml (MLflow copies the
    package into every logged model, and downloads a model to a new temporary folder on each load)
    compiled again. numba stamps a source by its content, so one folder serves every identical copy:
    a worker compiles at most once, and only when no worker has before.
    """
    try:
        from numba.core import caching, config
    except ImportError:  # pragma: no cover - numba reorganised
        return

    class PortableCacheLocator(caching.UserProvidedCacheLocator):
        def __init__(self, py_func, py_file):
            super().__init__(py_func, py_file)
            self._cache_path = os.path.join(config.CACHE_DIR, "painml-trees")

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.abspath(py_file) != os.path.abspath(__file__):
                return None
            return super().from_function(py_func, py_file)

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    locators = getattr(impl, "_locator_classes", None)
    if isinstance(locators, list) and not any(c.__name__ == "PortableCacheLocator" for c in locators):
        locators.insert(0, PortableCacheLocator)


_portable_cache()


def _kernel(function: Callable) -> Callable:
    """``njit(nogil=True)``, cached on disk when numba has somewhere to write (``$NUMBA_CACHE_DIR``, else
    the package folder, else ``~/.cache``); on a read-only system it compiles in every process instead."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return njit(nogil=True)(function)


# --------------------------------------------------------------------------- kernels: scores


@_kernel
def _transform(x, xr, b, n_variants):
    """Row x as column b of xr: the values the nodes compare (module docstring), no branches."""
    n = x.shape[0]
    for j in range(n):
        v = x[j]
        v = 0.0 if abs(v) <= _KZ else v
        nan = v != v
        xr[j, b] = v
        xr[n + j, b] = -np.inf if nan else v
        if n_variants == 4:
            empty = nan or v == 0.0
            xr[2 * n + j, b] = np.nan if empty else v
            xr[3 * n + j, b] = -np.inf if empty else v


@_kernel
def _raw_kernel(
    X, lo, hi, roots, depth, order, group_depth, column, threshold, left, right, value, n_variants, n_classes, out
):
    """Margins of rows lo..hi added into out (zeroed), trees in LightGBM's order so sums are bit-identical."""
    n_trees = roots.shape[0] - 1  # the last root is an empty tree padding ``order``
    xr = np.empty((n_variants * X.shape[1], _ROW_BLOCK))
    node = np.empty(_TREE_BLOCK, np.uint32)
    r = lo
    while hi - r >= _ROW_BLOCK:
        for b in range(_ROW_BLOCK):
            _transform(X[r + b], xr, b, n_variants)
        for t in range(n_trees):
            for b in range(_ROW_BLOCK):
                node[b] = roots[t]
            for _ in range(depth[t]):
                for b in range(_ROW_BLOCK):
                    n = node[b]
                    node[b] = left[n] if xr[column[n], b] <= threshold[n] else right[n]
            k = t % n_classes
            for b in range(_ROW_BLOCK):
                out[r + b, k] += value[node[b]]
        r += _ROW_BLOCK
    leaf_values = np.empty(n_trees + 1)
    for row in range(r, hi):
        _transform(X[row], xr, np.int64(0), n_variants)  # int64, not a literal: one compiled version
        for g in range(group_depth.shape[0]):
            g0 = g * _TREE_BLOCK
            for b in range(_TREE_BLOCK):
                node[b] = roots[order[g0 + b]]
            for _ in range(group_depth[g]):
                for b in range(_TREE_BLOCK):
                    n = node[b]
                    node[b] = left[n] if xr[column[n], 0] <= threshold[n] else right[n]
            for b in range(_TREE_BLOCK):
                leaf_values[order[g0 + b]] = value[node[b]]
        for t in range(n_trees):
            out[row, t % n_classes] += leaf_values[t]


# --------------------------------------------------------------------------- kernels: SHAP


@_kernel
def _shapley_weights(d, w):
    """w[s] = s! (d-1-s)! / d! for s < d."""
    w[0] = 1.0 / d
    for s in range(d - 1):
        w[s + 1] = w[s] * (s + 1) / (d - 1 - s)


@_kernel
def _build_tables(path_start, feat_start, leaf_zero, feat_bits, leaf_value, table_start, size):
    """H over every agreement pattern of every tabulated leaf (module docstring)."""
    table = np.zeros(size, np.float64)
    max_d = 0
    for leaf in range(table_start.shape[0]):
        if table_start[leaf] >= 0:
            max_d = max(max_d, feat_start[leaf + 1] - feat_start[leaf])
    width = 1 << max_d
    poly = np.empty((width, max_d + 1), np.float64)  # prod_{j in m} (z_j + y), coefficients by degree
    inside = np.empty(width, np.float64)  # prod_{j in m} z_j
    count = np.empty(width, np.int64)
    compact = np.empty(width, np.float64)  # H by feature mask
    w = np.empty(max_d + 1, np.float64)
    for leaf in range(table_start.shape[0]):
        start = table_start[leaf]
        f0 = feat_start[leaf]
        d = feat_start[leaf + 1] - f0
        if start < 0 or d == 0:
            continue
        v = leaf_value[leaf]
        _shapley_weights(d, w)
        poly[0, 0] = 1.0
        inside[0] = 1.0
        count[0] = 0
        for j in range(d):
            zj = leaf_zero[f0 + j]
            high = 1 << j
            for m in range(high, 2 * high):
                prev = m - high
                a = count[prev]
                poly[m, a + 1] = poly[prev, a]
                for s in range(a, 0, -1):
                    poly[m, s] = poly[prev, s - 1] + zj * poly[prev, s]
                poly[m, 0] = zj * poly[prev, 0]
                inside[m] = inside[prev] * zj
                count[m] = a + 1
        full = (1 << d) - 1
        for m in range(full + 1):
            g = 0.0
            for s in range(min(count[m], d - 1) + 1):
                g += w[s] * poly[m, s]
            compact[m] = v * inside[full ^ m] * g
        for pattern in range(1 << (path_start[leaf + 1] - path_start[leaf])):
            m = 0
            for j in range(d):
                c = feat_bits[f0 + j]
                if pattern & c == c:
                    m |= 1 << j
            table[start + pattern] = compact[m]
    return table


@_kernel
def _leaf_on_the_fly(v, zero, feats, f0, d, one, w, p, q, phi, b):
    """One untabulated leaf's contributions for one-fractions ``one`` into phi[:, b], O(D^2)."""
    _shapley_weights(d, w)
    p[0] = 1.0
    a = 0
    c = 1.0
    for j in range(d):
        z = zero[f0 + j]
        if one[j]:
            p[a + 1] = p[a]
            for s in range(a, 0, -1):
                p[s] = p[s - 1] + z * p[s]
            p[0] = z * p[0]
            a += 1
        else:
            c *= z
    g = 0.0
    for s in range(min(a, d - 1) + 1):
        g += w[s] * p[s]
    for i in range(d):
        if one[i]:
            # p / (z_i + y), from the top: each step shrinks earlier rounding by z_i <= 1
            z = zero[f0 + i]
            q[a - 1] = p[a]
            for s in range(a - 1, 0, -1):
                q[s - 1] = p[s] - z * q[s]
            total = 0.0
            for s in range(a):
                total += w[s] * q[s]
            phi[feats[f0 + i], b] += v * (1.0 - z) * c * total
        else:
            phi[feats[f0 + i], b] += -v * c * g


@_kernel
def _scratch_sizes(node_start, late_leaf, feat_start):
    """Scratch sizes of the SHAP kernels: most nodes in a tree, most features on a leaf computed late."""
    max_nodes = 1
    for t in range(node_start.shape[0] - 1):
        max_nodes = max(max_nodes, node_start[t + 1] - node_start[t])
    max_d = 1
    for i in range(late_leaf.shape[0]):
        max_d = max(max_d, feat_start[late_leaf[i] + 1] - feat_start[late_leaf[i]])
    return max_nodes, max_d


@_kernel
def _shap_kernel(
    X,
    targets,
    rows,
    n_classes,
    n_variants,
    node_start,
    column,
    threshold,
    child_slot,
    entry_start,
    entry_slot,
    entry_bits,
    entry_feature,
    entry_table,
    entry_coef,
    table,
    late_start,
    late_leaf,
    path_start,
    path_node,
    path_left,
    path_bit,
    feat_start,
    leaf_feature,
    leaf_zero,
    leaf_value,
    out,
):
    """SHAP values of ``rows`` (sorted by target) for their target class into out, a class's trees only.

    Rows of one class go through a tree as a block: each node and table entry
    is read once per block and the tree's tables stay in cache meanwhile.
    """
    n_features = X.shape[1]
    n_iter = (node_start.shape[0] - 1) // n_classes
    max_nodes, max_d = _scratch_sizes(node_start, late_leaf, feat_start)
    block = min(_SHAP_BLOCK, rows.shape[0])  # a small call must not pay for a full block's scratch
    xr = np.empty((n_variants * n_features, block))
    pattern = np.zeros((2 * max_nodes + 1, block), np.uint64)  # agreement bits per node and leaf slot
    went_left = np.empty((max_nodes, block), np.uint8)
    phi = np.empty((n_features, block))
    one = np.empty(max_d, np.uint8)
    w = np.empty(max_d + 1)
    p = np.empty(max_d + 1)
    q = np.empty(max_d + 1)
    has_late = late_leaf.shape[0] > 0
    start = 0
    while start < rows.shape[0]:
        k = targets[rows[start]]
        nb = 1
        while nb < block and start + nb < rows.shape[0] and targets[rows[start + nb]] == k:
            nb += 1
        nbu = np.uint64(nb)
        for b in range(nb):
            _transform(X[rows[start + b]], xr, b, n_variants)
            for j in range(n_features):
                phi[j, b] = 0.0
        for it in range(n_iter):
            t = it * n_classes + k
            n0 = np.uint64(node_start[t])
            for b in range(nbu):
                pattern[0, b] = 0
            # Unsigned indices from here on: numba adds a negative-index fix-up to every signed one.
            for n in range(n0, np.uint64(node_start[t + 1])):
                col = column[n]
                thr = threshold[n]
                me = n - n0
                sl = child_slot[n, 0]
                sr = child_slot[n, 1]
                for b in range(nbu):
                    a = np.uint64(xr[col, b] <= thr)
                    if has_late:
                        went_left[me, b] = a
                    base = pattern[me, b] + pattern[me, b]
                    pattern[sl, b] = base + a
                    pattern[sr, b] = base + (_ONE - a)
            for e in range(np.uint64(entry_start[t]), np.uint64(entry_start[t + 1])):
                s = entry_slot[e]
                bits = entry_bits[e]
                f = entry_feature[e]
                h = entry_table[e]
                for b in range(nbu):
                    i = pattern[s, b]
                    agree = np.uint64((i & bits) == bits)
                    phi[f, b] += entry_coef[e, agree] * table[h + (i & ~(bits * agree))]
            for late in range(late_start[t], late_start[t + 1]):
                leaf = late_leaf[late]
                d = feat_start[leaf + 1] - feat_start[leaf]
                for b in range(nb):
                    for j in range(d):
                        one[j] = 1
                    for e in range(path_start[leaf], path_start[leaf + 1]):
                        if went_left[path_node[e], b] != path_left[e]:
                            one[path_bit[e]] = 0
                    _leaf_on_the_fly(
                        leaf_value[leaf], leaf_zero, leaf_feature, feat_start[leaf], d, one, w, p, q, phi, b
                    )
        for b in range(nb):
            r = rows[start + b]
            for j in range(n_features):
                out[r, j] = phi[j, b]
        start += nb


@_kernel
def _shap_row(
    x,
    k,
    n_classes,
    n_variants,
    node_start,
    column,
    threshold,
    child_slot,
    entry_start,
    entry_slot,
    entry_bits,
    entry_feature,
    entry_table,
    entry_coef,
    table,
    late_start,
    late_leaf,
    path_start,
    path_node,
    path_left,
    path_bit,
    feat_start,
    leaf_feature,
    leaf_zero,
    leaf_value,
    phi,
):
    """:func:`_shap_kernel` for one row, with flat scratch arrays (faster than a block of one row) and the
    same terms added in the same order."""
    n_features = x.shape[0]
    n_iter = (node_start.shape[0] - 1) // n_classes
    max_nodes, max_d = _scratch_sizes(node_start, late_leaf, feat_start)
    xr = np.empty((n_variants * n_features, 1))
    _transform(x, xr, np.int64(0), n_variants)
    xv = xr[:, 0].copy()
    pattern = np.zeros(2 * max_nodes + 1, np.uint64)
    went_left = np.empty((max_nodes, 1), np.uint8)
    coef = entry_coef.ravel()
    phi2 = phi.reshape((n_features, 1))  # the same memory, for the late leaves
    one = np.empty(max_d, np.uint8)
    w = np.empty(max_d + 1)
    p = np.empty(max_d + 1)
    q = np.empty(max_d + 1)
    for it in range(n_iter):
        t = it * n_classes + k
        n0 = np.uint64(node_start[t])
        pattern[0] = 0
        for n in range(n0, np.uint64(node_start[t + 1])):
            a = np.uint64(xv[column[n]] <= threshold[n])
            me = n - n0
            went_left[me, 0] = a
            base = pattern[me] + pattern[me]
            pattern[child_slot[n, 0]] = base + a
            pattern[child_slot[n, 1]] = base + (_ONE - a)
        for e in range(np.uint64(entry_start[t]), np.uint64(entry_start[t + 1])):
            i = pattern[entry_slot[e]]
            bits = entry_bits[e]
            agree = np.uint64((i & bits) == bits)
            phi[entry_feature[e]] += coef[e + e + agree] * table[entry_table[e] + (i & ~(bits * agree))]
        for late in range(late_start[t], late_start[t + 1]):
            leaf = late_leaf[late]
            d = feat_start[leaf + 1] - feat_start[leaf]
            for j in range(d):
                one[j] = 1
            for e in range(path_start[leaf], path_start[leaf + 1]):
                if went_left[path_node[e], 0] != path_left[e]:
                    one[path_bit[e]] = 0
            _leaf_on_the_fly(
                leaf_value[leaf], leaf_zero, leaf_feature, feat_start[leaf], d, one, w, p, q, phi2, np.int64(0)
            )


# --------------------------------------------------------------------------- layout (numpy, once per model)


def _offsets(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Start of each group in a sorted group-id array, plus the end."""
    return np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=n_groups))]).astype(np.int64)


def _paths(child: np.ndarray, n_leaves: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every leaf's path as (leaf, node, went left) entries, by leaf, then from the leaf up to the root.

    ``child`` holds global children (internal >= 0, leaf l as ~l), two per node.
    """
    n_nodes = child.shape[0] // 2
    code = np.arange(2 * n_nodes)  # 2 * parent + (1 for a right child)
    internal = child >= 0
    parent_of_node = np.full(n_nodes, -1, np.int64)
    parent_of_node[child[internal]] = code[internal]
    up = np.full(n_leaves, -1, np.int64)
    up[~child[~internal]] = code[~internal]
    leaves, nodes, lefts = [], [], []
    live = np.flatnonzero(up >= 0)
    while live.size:
        node = up[live] >> 1
        leaves.append(live)
        nodes.append(node)
        lefts.append((up[live] & 1) == 0)
        up[live] = parent_of_node[node]
        live = live[up[live] >= 0]
    if not leaves:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    leaf, node, left = np.concatenate(leaves), np.concatenate(nodes), np.concatenate(lefts)
    order = np.argsort(leaf, kind="stable")  # levels were appended leaf-first, so each leaf stays bottom-up
    return leaf[order], node[order], left[order]


class _Shap:
    """Leaf paths, tables and per-tree entry lists, built on first use: scoring never pays for them."""

    def __init__(self, ens: TreeEnsemble, budget: int) -> None:
        node_start, leaf_start = ens._node_start, ens._leaf_start
        nodes_per_tree, leaves_per_tree = np.diff(node_start), np.diff(leaf_start)
        n_trees, n_leaves, n_features = len(nodes_per_tree), int(leaf_start[-1]), ens.n_features
        if (ens._leaf_count[np.repeat(nodes_per_tree > 0, leaves_per_tree)] <= 0).any():
            raise Unsupported("a leaf without training rows (its zero fraction would be 0)")
        leaf, node, left = ens._path_leaf, ens._path_node, ens._path_left
        path_start = _offsets(leaf, n_leaves)
        level = np.arange(len(leaf)) - path_start[leaf]  # 0 next to the leaf
        tree_of_node = np.repeat(np.arange(n_trees), nodes_per_tree)
        # A leaf's unique features (j = 0..D-1): zero fraction = product of child/parent counts of
        # their nodes, and the bits of those nodes in the leaf's agreement pattern.
        child_count = np.where(level == 0, ens._leaf_count[leaf], np.roll(ens._internal_count[node], 1))
        unique, group = np.unique(leaf * n_features + ens._feature[node], return_inverse=True)
        feat_start = _offsets(unique // n_features, n_leaves)
        leaf_feature = unique % n_features
        leaf_zero = np.ones(len(unique))
        np.multiply.at(leaf_zero, group, child_count / ens._internal_count[node])
        feat_bits = np.zeros(len(unique), np.int64)
        np.bitwise_or.at(feat_bits, group, np.where(level < 63, np.left_shift(1, np.minimum(level, 62)), 0))
        path_len, n_unique = np.diff(path_start), np.diff(feat_start)
        # Tables fill the budget smallest first (entries of 8 bytes), laid out in leaf order so
        # that a tree's tables sit together.
        wanted = (path_len <= _MAX_TABLE_DEPTH) & (n_unique > 0)
        cost = np.where(wanted, 1 << np.minimum(path_len, _MAX_TABLE_DEPTH), 0)
        order = np.flatnonzero(wanted)
        order = order[np.argsort(cost[order], kind="stable")]
        chosen = np.sort(order[np.cumsum(cost[order]) * 8 <= max(int(budget), 0)])
        table_start = np.full(n_leaves, -1, np.int64)
        sizes = cost[chosen]
        table_start[chosen] = np.cumsum(sizes) - sizes
        self.table = _build_tables(
            path_start, feat_start, leaf_zero, feat_bits, ens._leaf_value, table_start, int(sizes.sum())
        )
        # One entry per (tabulated leaf, feature), in tree order; the other leaves run late.
        tree_of_leaf = np.repeat(np.arange(n_trees), leaves_per_tree)
        entry_leaf = np.repeat(np.arange(n_leaves), n_unique)
        keep = table_start[entry_leaf] >= 0
        entry_leaf = entry_leaf[keep]
        entry_tree = tree_of_leaf[entry_leaf]
        z = leaf_zero[keep]
        # the factor for a feature that disagrees (-1) or agrees ((1 - z) / z): a load, not a branch
        entry_coef = np.stack([np.full_like(z, -1.0), (1.0 - z) / z], axis=1)
        late_leaf = np.flatnonzero((table_start < 0) & (n_unique > 0))
        # Each node's children as tree-local slots: the tree's nodes first, then its leaves.
        tree2 = np.repeat(tree_of_node, 2)
        child = ens._child
        child_slot = np.where(child >= 0, child - node_start[tree2], nodes_per_tree[tree2] + ~child - leaf_start[tree2])
        self.tabulated, self.late = int(len(chosen)), int(len(late_leaf))
        self.args = (
            ens.n_classes,
            ens._n_variants,
            node_start,
            ens._column.astype(np.uint32),
            ens._threshold,
            child_slot.astype(np.uint32).reshape(-1, 2),
            _offsets(entry_tree, n_trees),
            (nodes_per_tree[entry_tree] + entry_leaf - leaf_start[entry_tree]).astype(np.uint32),
            feat_bits[keep].astype(np.uint64),
            leaf_feature[keep].astype(np.uint32),
            table_start[entry_leaf].astype(np.uint64),
            entry_coef,
            self.table,
            _offsets(tree_of_leaf[late_leaf], n_trees),
            late_leaf,
            path_start,
            node - node_start[tree_of_node[node]],
            left.astype(np.uint8),
            group - feat_start[leaf],
            feat_start,
            leaf_feature,
            leaf_zero,
            ens._leaf_value,
        )


class TreeEnsemble:
    """A LightGBM booster's trees as flat arrays; see the module docstring.

    ``n_classes`` is LightGBM's trees per iteration (1 for binary and
    regression models, K for K-class models), ``n_features`` the input width.
    ``table_budget`` caps the SHAP tables in bytes (default :data:`TABLE_BUDGET`).
    Instances are immutable and safe to share between threads.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], table_budget: int | None = None) -> None:
        stored = {}
        for key, dtype in _STORED.items():
            if key not in arrays:
                raise ValueError(f"tree arrays lack {key!r}")
            value = np.array(arrays[key], dtype=dtype, copy=True)
            value.flags.writeable = False
            stored[key] = value
        if int(stored["format"]) != FORMAT:
            raise ValueError(f"tree arrays of format {int(stored['format'])}, expected {FORMAT}")
        self._stored = stored
        self.n_classes = int(stored["n_classes"])
        self.n_features = int(stored["n_features"])
        self.table_budget = TABLE_BUDGET if table_budget is None else int(table_budget)
        self._prepare()
        self._shap_state: _Shap | None = None
        self._expected_values: np.ndarray | None = None
        self._lock = threading.Lock()

    def _prepare(self) -> None:
        """Validate (the kernels do not bound-check) and lay out the scoring arrays."""
        s = self._stored
        node_start, leaf_start = s["node_start"], s["leaf_start"]
        n_trees = node_start.shape[0] - 1
        n_nodes, n_leaves = s["split_feature"].shape[0], s["leaf_value"].shape[0]
        if (
            self.n_classes < 1
            or self.n_features < 1
            or n_trees < 0
            or n_trees % self.n_classes
            or leaf_start.shape != (n_trees + 1,)
        ):
            raise ValueError("tree arrays: inconsistent tree counts")
        for key in ("threshold", "decision_type", "left_child", "right_child", "internal_count"):
            if s[key].shape != (n_nodes,):
                raise ValueError(f"tree arrays: {key} has the wrong length")
        if s["leaf_count"].shape != (n_leaves,):
            raise ValueError("tree arrays: leaf_count has the wrong length")
        nodes_per_tree, leaves_per_tree = np.diff(node_start), np.diff(leaf_start)
        if (
            node_start[0] != 0
            or leaf_start[0] != 0
            or node_start[-1] != n_nodes
            or leaf_start[-1] != n_leaves
            or (nodes_per_tree < 0).any()
            or (leaves_per_tree != nodes_per_tree + 1).any()
        ):
            raise ValueError("tree arrays: inconsistent node and leaf offsets")
        if n_nodes and (s["split_feature"].min() < 0 or s["split_feature"].max() >= self.n_features):
            raise ValueError("tree arrays: split feature out of range")
        if n_nodes and (s["internal_count"].min() <= 0 or np.isnan(s["threshold"]).any()):
            raise ValueError("tree arrays: node counts must be positive and thresholds numbers")
        if (s["decision_type"] & 1).any():
            raise Unsupported("categorical splits")
        tree = np.repeat(np.arange(n_trees), nodes_per_tree)
        local = np.arange(n_nodes) - node_start[tree]
        child = np.empty(2 * n_nodes, np.int64)
        for side, key in enumerate(("left_child", "right_child")):
            c = s[key].astype(np.int64)
            internal = c >= 0
            bad_internal = internal & ((c <= local) | (c >= nodes_per_tree[tree]))
            bad_leaf = ~internal & (~c >= leaves_per_tree[tree])
            if bad_internal.any() or bad_leaf.any():
                raise ValueError("tree arrays: child index out of range")
            child[side::2] = np.where(internal, c + node_start[tree], ~(~c + leaf_start[tree]))
        # Each leaf reached exactly once: with children after parents this makes every tree a tree.
        reached = np.sort(np.concatenate([~child[child < 0], leaf_start[:-1][nodes_per_tree == 0]]))
        if not np.array_equal(reached, np.arange(n_leaves)):
            raise ValueError("tree arrays: leaves are not each reached once")
        self._node_start, self._leaf_start, self._child = node_start, leaf_start, child
        self._feature = s["split_feature"].astype(np.int64)
        self._threshold = s["threshold"]
        self._leaf_value, self._leaf_count = s["leaf_value"], s["leaf_count"]
        self._internal_count = s["internal_count"]
        self._path_leaf, self._path_node, self._path_left = _paths(child, n_leaves)

        # Which variant of the row each node reads (module docstring).
        decision = s["decision_type"].astype(np.int64)
        default_left = ((decision >> 1) & 1).astype(bool)
        missing = (decision >> 2) & 3  # 0 None, 1 Zero, 2 NaN
        nan_left = np.where(missing == 0, 0.0 <= self._threshold, default_left)
        variant = np.where(missing == 1, np.where(default_left, 3, 2), np.where(nan_left, 1, 0))
        self._n_variants = 4 if (missing == 1).any() else 2
        self._column = self._feature + self.n_features * variant

        # Scoring slots: per tree its nodes then its leaves (looping onto themselves), then one empty tree.
        n_slots = n_nodes + n_leaves + 1
        tree_of_leaf = np.repeat(np.arange(n_trees), leaves_per_tree)
        node_slot = np.arange(n_nodes) + leaf_start[tree]
        leaf_slot = np.arange(n_leaves) + node_start[1:][tree_of_leaf]
        internal = child >= 0
        slot_of_child = np.empty(2 * n_nodes, np.int64)
        slot_of_child[internal] = node_slot[child[internal]]
        slot_of_child[~internal] = leaf_slot[~child[~internal]]
        left = np.arange(n_slots, dtype=np.uint32)
        right = left.copy()
        left[node_slot], right[node_slot] = slot_of_child[0::2], slot_of_child[1::2]
        column = np.zeros(n_slots, np.uint32)
        column[node_slot] = self._column
        threshold = np.zeros(n_slots)
        threshold[node_slot] = self._threshold
        value = np.zeros(n_slots)
        value[leaf_slot] = self._leaf_value
        has_nodes = nodes_per_tree > 0
        roots = np.full(n_trees + 1, n_slots - 1, np.uint32)
        roots[:-1][has_nodes] = node_slot[node_start[:-1][has_nodes]]
        roots[:-1][~has_nodes] = leaf_slot[leaf_start[:-1][~has_nodes]]
        leaf_depth = np.bincount(self._path_leaf, minlength=n_leaves)
        depth = np.maximum.reduceat(leaf_depth, leaf_start[:-1]) if n_trees else np.zeros(0, np.int64)
        order = np.argsort(depth, kind="stable")  # trees walked together have similar depths
        order = np.concatenate([order, np.full((-n_trees) % _TREE_BLOCK, n_trees)]).astype(np.int64)
        group_depth = np.append(depth, 0)[order].reshape(-1, _TREE_BLOCK).max(axis=1, initial=0)
        self._score_args = (
            roots,
            depth.astype(np.int64),
            order,
            group_depth,
            column,
            threshold,
            left,
            right,
            value,
            self._n_variants,
            self.n_classes,
        )

    # -- construction

    @classmethod
    def from_booster(cls, booster: Any, table_budget: int | None = None) -> TreeEnsemble:
        """The trees ``booster.predict`` uses by default: the best iteration's when there is one, else all.

        ``booster`` is a ``lightgbm.Booster`` (or a fitted LightGBM scikit-learn model).
        """
        booster = getattr(booster, "booster_", booster)
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        return cls(_parse_model(booster.model_to_string(num_iteration=iterations)), table_budget)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], table_budget: int | None = None) -> TreeEnsemble:
        """The ensemble :meth:`arrays` gave (e.g. from ``np.load``), without LightGBM."""
        return cls(arrays, table_budget)

    def arrays(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (read-only) for ``np.savez``: LightGBM's per-tree fields, trees concatenated."""
        return dict(self._stored)

    # -- scoring

    def raw_scores(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """(n, n_classes) margins, bit-identical to ``booster.predict(X, raw_score=True)``."""
        X = self._matrix(X)
        n = X.shape[0]
        out = np.zeros((n, self.n_classes))
        args = self._score_args
        if threads <= 1 or n < 2 * _MIN_SLICE:  # the common one-record call: nothing between it and the kernel
            _raw_kernel(X, 0, n, *args, out)
        else:
            _run_rows(n, threads, lambda lo, hi: _raw_kernel(X, lo, hi, *args, out))
        return out

    def contributions(self, X: np.ndarray, targets: np.ndarray, threads: int = 1) -> np.ndarray:
        """(n, n_features) exact TreeSHAP values of class ``targets[r]`` (model order) for row r.

        The columns of that class in ``booster.predict(X, pred_contrib=True)``
        without the bias (:meth:`expected_values`); only that class's trees
        are visited.
        """
        X = self._matrix(X)
        n = X.shape[0]
        targets = np.asarray(targets)
        if targets.dtype.kind not in "iu":
            raise TypeError(f"targets must be integer class indices, not {targets.dtype}")
        if targets.shape != (n,):
            targets = np.broadcast_to(targets, (n,))
        targets = np.ascontiguousarray(targets, dtype=np.int64)
        out = np.zeros((n, self.n_features))
        if n == 0:
            return out
        if n == 1:  # numpy's min and max would cost microseconds
            low = high = int(targets[0])
        else:
            low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= self.n_classes:
            raise ValueError(f"targets must be class indices in [0, {self.n_classes})")
        args = self._shap().args
        if n == 1:
            _shap_row(X[0], targets[0], *args, out[0])
            return out

        def run(lo: int, hi: int) -> None:
            rows = lo + np.argsort(targets[lo:hi], kind="stable") if hi - lo > 1 else np.arange(lo, hi)
            _shap_kernel(X, targets, rows, *args, out)

        _run_rows(n, threads, run)
        return out

    def expected_values(self) -> np.ndarray:
        """(n_classes,) bias per class: the last column of each class in LightGBM's ``pred_contrib``.

        Summed as LightGBM's ``Tree::ExpectedValue`` does, in its order.
        """
        if self._expected_values is None:
            out = [0.0] * self.n_classes
            counts, values = self._leaf_count.tolist(), self._leaf_value.tolist()
            internal, leaf_start = self._internal_count.tolist(), self._leaf_start.tolist()
            for t, node in enumerate(self._node_start[:-1].tolist()):
                first, end = leaf_start[t], leaf_start[t + 1]
                if end - first == 1:
                    value = values[first]
                else:
                    total, value = float(internal[node]), 0.0
                    for leaf in range(first, end):
                        value += (counts[leaf] / total) * values[leaf]
                out[t % self.n_classes] += value
            self._expected_values = np.array(out)
        return self._expected_values.copy()

    def table_info(self) -> dict[str, int]:
        """SHAP table size and coverage (builds the tables): for benchmarks and capacity planning."""
        sh = self._shap()
        return {
            "table_bytes": int(sh.table.nbytes),
            "leaves": int(self._leaf_start[-1]),
            "tabulated_leaves": sh.tabulated,
            "late_leaves": sh.late,
        }

    def _shap(self) -> _Shap:
        state = self._shap_state
        if state is None:
            with self._lock:
                if self._shap_state is None:
                    self._shap_state = _Shap(self, self.table_budget)
                state = self._shap_state
        return state

    def _matrix(self, X: Any) -> np.ndarray:
        if type(X) is not np.ndarray or X.dtype != np.float64 or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a (rows, {self.n_features}) matrix, got shape {X.shape}")
        return X


# --------------------------------------------------------------------------- helpers


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(workers)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(workers)
            if pool is None:
                pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="painml-trees")
    return pool


def _run_rows(n: int, threads: int, run: Callable[[int, int], None]) -> None:
    """run(lo, hi) over contiguous slices, one per thread; the caller's thread takes the first."""
    parts = max(1, min(int(threads), n // _MIN_SLICE))
    if parts == 1:
        run(0, n)
        return
    bounds = [n * i // parts for i in range(parts + 1)]
    pool = _pool(parts - 1)
    futures = [pool.submit(run, bounds[i], bounds[i + 1]) for i in range(1, parts)]
    run(bounds[0], bounds[1])
    for future in futures:
        future.result()


def _parse_model(text: str) -> dict[str, np.ndarray]:
    """LightGBM's text model (``model_to_string``) as :meth:`TreeEnsemble.arrays`."""
    head, _, rest = text.partition("\nTree=")
    header = dict(line.split("=", 1) if "=" in line else (line, "") for line in head.splitlines())
    if "average_output" in header:
        raise Unsupported("random-forest averaging")
    n_classes = int(header["num_tree_per_iteration"])
    n_features = int(header["max_feature_idx"]) + 1
    body = rest.partition("\nend of trees")[0]
    blocks = body.split("\nTree=") if body.strip() else []
    parts: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "split_feature",
            "threshold",
            "decision_type",
            "left_child",
            "right_child",
            "internal_count",
            "leaf_value",
            "leaf_count",
        )
    }
    nodes, leaves = [0], [0]
    for block in blocks:
        tree = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        if int(tree.get("num_cat", "0")) > 0:
            raise Unsupported("categorical splits")
        if int(tree.get("is_linear", "0")):
            raise Unsupported("linear trees")
        n_leaves = int(tree["num_leaves"])
        n_nodes = n_leaves - 1
        for key in parts:
            length = n_leaves if key.startswith("leaf") else n_nodes
            values = tree.get(key, "").split() if length else []
            if key == "leaf_count" and not values and n_leaves == 1:
                values = ["0"]
            if len(values) != length:
                raise Unsupported(f"tree field {key} of unexpected length")
            dtype = _STORED[key]
            if dtype == np.float64:
                parts[key].append(np.array([float(v) for v in values], dtype=np.float64))
            else:
                parts[key].append(np.array([int(v) for v in values], dtype=dtype))
        nodes.append(nodes[-1] + n_nodes)
        leaves.append(leaves[-1] + n_leaves)
    if len(blocks) % n_classes:
        raise Unsupported("a tree count that is not a whole number of iterations")
    out = {key: (np.concatenate(v) if v else np.zeros(0, _STORED[key])) for key, v in parts.items()}
    out.update(
        format=np.int64(FORMAT),
        n_classes=np.int64(n_classes),
        n_features=np.int64(n_features),
        node_start=np.array(nodes, np.int64),
        leaf_start=np.array(leaves, np.int64),
    )
    return {key: np.asarray(out[key], dtype=dtype) for key, dtype in _STORED.items()}
