"""painml.model.compiled.trees against LightGBM itself: margins bit for bit, TreeSHAP to 1e-10, on awkward inputs."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pytest

from painml.model.compiled import trees
from painml.model.compiled.trees import TreeEnsemble, Unsupported

N_FEATURES = 12
NAN_IN_TRAINING = (0, 3, 7)  # these columns have missing values when fitting (missing type NaN)


def _data(n: int, seed: int, nan_everywhere: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Half binary, half continuous columns; NaN in a few columns (in every column when scoring)."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, N_FEATURES))
    X[:, :6] = rng.integers(0, 2, (n, 6))
    X[:, 6:] = rng.normal(size=(n, 6)) * [1, 10, 0.1, 1, 100, 1]
    logits = np.stack([X[:, 0] + X[:, 6], X[:, 1] - X[:, 7] / 10 + X[:, 2], X[:, 3] * X[:, 8] * 5], axis=1)
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    columns = range(N_FEATURES) if nan_everywhere else NAN_IN_TRAINING
    for j in columns:
        X[rng.random(n) < 0.15, j] = np.nan
    return X, y


def _awkward(X: np.ndarray) -> np.ndarray:
    """Scoring rows with what LightGBM treats specially: values within 1e-35f of zero, -0.0, infinities."""
    X = X.copy()
    X[0, :] = 1e-36
    X[1, :] = -1e-40
    X[2, :] = -0.0
    X[3, 6:] = np.inf
    X[4, 6:] = -np.inf
    X[5, :] = np.nan
    return X


def _fit(X: np.ndarray, y: np.ndarray, **params) -> lgb.Booster:
    base = dict(n_estimators=30, num_leaves=15, learning_rate=0.2, min_child_samples=10, verbose=-1, n_jobs=1)
    return lgb.LGBMClassifier(**{**base, **params}).fit(X, y).booster_


def _reference(booster: lgb.Booster, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LightGBM's margins (n, K) and contributions (n, K, features + 1)."""
    k = booster.num_model_per_iteration()
    raw = booster.predict(X, raw_score=True).reshape(len(X), k)
    contrib = booster.predict(X, pred_contrib=True).reshape(len(X), k, X.shape[1] + 1)
    return raw, contrib


def _check(ens: TreeEnsemble, booster: lgb.Booster, X: np.ndarray, seed: int = 0) -> None:
    raw, contrib = _reference(booster, X)
    assert np.array_equal(ens.raw_scores(X), raw)
    targets = np.random.default_rng(seed).integers(0, ens.n_classes, len(X))
    expected = contrib[np.arange(len(X)), targets, :-1]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(ens.contributions(X, targets), expected, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(ens.expected_values(), contrib[0, :, -1], rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def multiclass():
    """3-class model on 3k rows; scoring rows have NaN in every column, so both NaN-type and None-type
    (no missing values in training) splits see missing values."""
    X, y = _data(3_000, seed=1)
    booster = _fit(X, y)
    X_test, _ = _data(600, seed=2, nan_everywhere=True)
    return booster, _awkward(X_test)


def test_multiclass_matches_lightgbm(multiclass):
    booster, X = multiclass
    ens = TreeEnsemble.from_booster(booster)
    assert (ens.n_classes, ens.n_features) == (3, N_FEATURES)
    missing = (ens.arrays()["decision_type"] >> 2) & 3
    assert {0, 2} <= set(missing.tolist())  # splits of both missing types are exercised
    _check(ens, booster, X)


def test_binary_with_zero_as_missing(multiclass):
    """One tree per iteration; zero_as_missing gives missing type Zero (zero and NaN go the default way)."""
    X, y = _data(3_000, seed=3)
    booster = _fit(X, (y == 1).astype(int), zero_as_missing=True)
    ens = TreeEnsemble.from_booster(booster)
    assert ens.n_classes == 1
    assert ((ens.arrays()["decision_type"] >> 2) & 3 == 1).any()
    _check(ens, booster, _awkward(_data(400, seed=4, nan_everywhere=True)[0]))


def test_deep_trees_beyond_the_table_budget():
    """Leaves past the table budget are computed on the fly and stay exact."""
    X, y = _data(2_000, seed=5)
    booster = _fit(X, y, n_estimators=6, num_leaves=63, min_child_samples=2)
    X_test = _awkward(_data(300, seed=6, nan_everywhere=True)[0])
    for budget in (20_000, 0):
        ens = TreeEnsemble.from_booster(booster, table_budget=budget)
        info = ens.table_info()
        assert info["late_leaves"] > 0 and info["table_bytes"] <= budget
        assert (info["tabulated_leaves"] > 0) == (budget > 0)
        _check(ens, booster, X_test, seed=budget)
        targets = np.arange(len(X_test)) % 3
        batch = ens.contributions(X_test, targets)
        for i in (0, 4, 9):  # a lone row's kernel computes late leaves too, in the same order
            assert np.array_equal(ens.contributions(X_test[i : i + 1], targets[i : i + 1]), batch[i : i + 1])


def test_best_iteration_as_predict_uses_it(multiclass):
    booster, X = multiclass
    booster = lgb.Booster(model_str=booster.model_to_string())
    booster.best_iteration = 7
    ens = TreeEnsemble.from_booster(booster)
    assert len(ens.arrays()["node_start"]) - 1 == 7 * 3
    _check(ens, booster, X)


def test_threads_rows_and_blocks_do_not_change_results(multiclass):
    booster, X = multiclass
    ens = TreeEnsemble.from_booster(booster)
    targets = np.arange(len(X)) % 3
    raw, contrib = ens.raw_scores(X), ens.contributions(X, targets)
    assert np.array_equal(ens.raw_scores(X, threads=2), raw)
    assert np.array_equal(ens.contributions(X, targets, threads=2), contrib)
    for i in (0, 5, 17):  # one row takes other code paths than a block
        assert np.array_equal(ens.raw_scores(X[i : i + 1]), raw[i : i + 1])
        assert np.array_equal(ens.contributions(X[i : i + 1], targets[i : i + 1]), contrib[i : i + 1])
    assert np.array_equal(ens.raw_scores(X[:13]), raw[:13])  # a block of 8 and 5 single rows


def test_concurrent_callers_share_one_ensemble(multiclass):
    """Server threads call one ensemble at once, the first contributions call (which builds the tables) too."""
    booster, X = multiclass
    ens = TreeEnsemble.from_booster(booster)
    targets = np.arange(len(X)) % 3
    slices = [slice(i, i + 150) for i in range(0, len(X), 150)] + [slice(i, i + 1) for i in range(20)]
    with ThreadPoolExecutor(4) as pool:
        raw = list(pool.map(lambda s: ens.raw_scores(X[s]), slices))
        contrib = list(pool.map(lambda s: ens.contributions(X[s], targets[s], threads=2), slices))
    reference = TreeEnsemble.from_booster(booster)
    for s, r, c in zip(slices, raw, contrib):
        assert np.array_equal(r, reference.raw_scores(X[s]))
        assert np.array_equal(c, reference.contributions(X[s], targets[s]))


def test_empty_input(multiclass):
    ens = TreeEnsemble.from_booster(multiclass[0])
    empty = np.zeros((0, N_FEATURES))
    assert ens.raw_scores(empty).shape == (0, 3)
    assert ens.contributions(empty, np.zeros(0, int)).shape == (0, N_FEATURES)


def test_bad_input_is_refused(multiclass):
    booster, X = multiclass
    ens = TreeEnsemble.from_booster(booster)
    with pytest.raises(ValueError):
        ens.raw_scores(X[:, :-1])
    with pytest.raises(ValueError):
        ens.contributions(X[:2], [0, 3])
    arrays = dict(ens.arrays())
    arrays["left_child"] = np.where(arrays["left_child"] >= 0, 0, arrays["left_child"])  # a child before its parent
    with pytest.raises(ValueError):
        TreeEnsemble.from_arrays(arrays)


def test_categorical_splits_are_unsupported():
    X, _ = _data(1_000, seed=7)
    X[:, 0] = np.random.default_rng(8).integers(0, 6, len(X))
    y = X[:, 0].astype(int) % 3  # only a categorical split can separate the classes
    booster = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y, categorical_feature=[0]).booster_
    assert "num_cat=0" not in booster.model_to_string().split("Tree=0", 1)[1].split("Tree=1", 1)[0]
    with pytest.raises(Unsupported):
        TreeEnsemble.from_booster(booster)


def test_arrays_round_trip_without_lightgbm(multiclass, tmp_path):
    """np.savez / np.load gives the same numbers, and loading and scoring import no LightGBM,
    scikit-learn or pandas (a fresh interpreter checks)."""
    booster, X = multiclass
    ens = TreeEnsemble.from_booster(booster)
    buffer = io.BytesIO()
    np.savez(buffer, **ens.arrays())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        loaded = TreeEnsemble.from_arrays(stored)
    targets = np.arange(len(X)) % 3
    assert np.array_equal(loaded.raw_scores(X), ens.raw_scores(X))
    assert np.array_equal(loaded.contributions(X, targets), ens.contributions(X, targets))
    path = tmp_path / "trees.npz"
    np.savez(path, **ens.arrays())
    np.save(tmp_path / "X.npy", X[:50])
    code = (
        "import sys, numpy as np\n"
        "from painml.model.compiled.trees import TreeEnsemble\n"
        f"e = TreeEnsemble.from_arrays(np.load({str(path)!r}))\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        "e.raw_scores(X); e.contributions(X, np.zeros(len(X), int)); e.expected_values()\n"
        "bad = [m for m in ('lightgbm', 'sklearn', 'pandas') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_budget_is_a_module_parameter(monkeypatch, multiclass):
    monkeypatch.setattr(trees, "TABLE_BUDGET", 0)
    ens = TreeEnsemble.from_booster(multiclass[0])
    assert ens.table_info()["tabulated_leaves"] == 0


def test_single_leaf_trees(multiclass):
    """A tree that never split (LightGBM keeps it as one constant leaf) scores and explains as LightGBM does."""
    booster, X = multiclass
    head, rest = booster.model_to_string().split("\nTree=0\n", 1)
    head = "\n".join(line for line in head.split("\n") if not line.startswith("tree_sizes="))
    blocks = ("Tree=0\n" + rest).split("\n\n\n")
    blocks[4] = "Tree=4\nnum_leaves=1\nnum_cat=0\nleaf_value=0.125\nis_linear=0\nshrinkage=1"
    patched = lgb.Booster(model_str=head + "\n" + "\n\n\n".join(blocks))
    ens = TreeEnsemble.from_booster(patched)
    assert np.diff(ens.arrays()["node_start"])[4] == 0
    _check(ens, patched, X)


def test_no_writable_cache_still_scores(tmp_path, multiclass):
    """Where numba finds nowhere to keep compiled kernels, they compile in the process instead of failing."""
    booster, X = multiclass
    path = tmp_path / "trees.npz"
    np.savez(path, **TreeEnsemble.from_booster(booster).arrays())
    np.save(tmp_path / "X.npy", X[:20])
    code = (
        "import numpy as np, numba.core.caching as caching\n"
        "caching.CacheImpl._locator_classes = []\n"  # what numba sees on a read-only system
        "from painml.model.compiled.trees import TreeEnsemble, _raw_kernel\n"
        "assert type(_raw_kernel._cache).__name__ == 'NullCache'\n"
        f"e = TreeEnsemble.from_arrays(np.load({str(path)!r}))\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        "np.save(" + repr(str(tmp_path / "raw.npy")) + ", e.raw_scores(X))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy"), booster.predict(X[:20], raw_score=True))
