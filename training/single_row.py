"""One-row LightGBM predictions through LightGBM's fast single-row C API.

``Booster.predict`` of one row costs ~45 us on the serving machine whatever the model
size: the Python wrapper builds a predictor and the C side parses its parameters for
every call, while the trees of a served customer take a few microseconds. A served
``/predict`` of one customer makes two or three such calls. LightGBM's
``LGBM_BoosterPredictForMatSingleRowFast`` keeps that set-up in a ``FastConfig`` made
once per booster and kind of output (~11 us per call, the same numbers: it runs the same
predictor code). The single-row predictor reads state that every prediction of its
booster resets (the tree count of the last call), so the fast path runs on a private copy
of the booster per tree count, which nothing else predicts with. The configuration sets
no thread count (one row runs on the calling thread; a count would stay set for that
thread's later large predictions).

:func:`predict_one` is ``Booster.predict`` for a (1, n_features) float matrix; it falls
back to ``Booster.predict`` for anything else and when the C entry points are missing.
The configurations live in a weak-keyed cache, never on the booster (which is pickled
with the models); a booster's configurations are freed when it is.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import lightgbm as lgb
import numpy as np

__all__ = ["predict_one"]

try:  # private names of lightgbm.basic (4.x); without them every call takes Booster.predict
    from lightgbm.basic import (
        _C_API_DTYPE_FLOAT64,
        _C_API_PREDICT_LEAF_INDEX,
        _C_API_PREDICT_NORMAL,
        _C_API_PREDICT_RAW_SCORE,
        _LIB,
        _c_str,
        _safe_call,
    )

    _AVAILABLE = hasattr(_LIB, "LGBM_BoosterPredictForMatSingleRowFast")
except ImportError:  # pragma: no cover - other LightGBM versions
    _AVAILABLE = False

#: Keyword arguments the fast path understands (anything else: ``Booster.predict``).
_KNOWN = frozenset({"raw_score", "pred_leaf", "num_iteration", "num_threads"})


class _Private:
    """A private copy of a booster for one tree count, with a ``FastConfig`` per kind of
    output (calls serialised by a lock: the copy's predictor state is shared)."""

    def __init__(self, booster: lgb.Booster, num_iteration: int) -> None:
        self.booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=-1))
        self.num_iteration = num_iteration
        self.n_features = self.booster.num_feature()
        self.lock = threading.Lock()
        self.configs: dict[int, tuple[ctypes.c_void_p, int]] = {}

    def _config(self, predict_type: int) -> tuple[ctypes.c_void_p, int]:
        """(FastConfig handle, output length) of ``predict_type``, made on first use."""
        found = self.configs.get(predict_type)
        if found is not None:
            return found
        handle, width = ctypes.c_void_p(), ctypes.c_int64(0)
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                self.booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(self.num_iteration),
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features),
                _c_str(""),
                ctypes.byref(handle),
            )
        )
        self.configs[predict_type] = (handle, 0)  # freed with the copy even if the next fails
        _safe_call(  # one value per class, or one leaf per tree used
            _LIB.LGBM_BoosterCalcNumPredict(
                self.booster._handle,
                ctypes.c_int(1),
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(self.num_iteration),
                ctypes.byref(width),
            )
        )
        self.configs[predict_type] = (handle, width.value)
        return handle, width.value

    def __call__(self, row: np.ndarray, predict_type: int) -> np.ndarray:
        written = ctypes.c_int64(0)
        with self.lock:
            handle, width = self._config(predict_type)
            out = np.empty(width, dtype=np.float64)
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    handle,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(written),
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
        if written.value != width:
            raise RuntimeError(f"LightGBM wrote {written.value} values, expected {width}")
        return out

    def __del__(self) -> None:
        for handle, _ in self.configs.values():
            _LIB.LGBM_FastConfigFree(handle)


_COPIES: weakref.WeakKeyDictionary[lgb.Booster, dict[int, _Private]] = weakref.WeakKeyDictionary()
_COPIES_LOCK = threading.Lock()


def predict_one(booster: lgb.Booster, X: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``booster.predict(X, **kwargs)``: the fast path for one float64 row.

    Parameters
    ----------
    booster : lightgbm.Booster
    X : ndarray, shape (n, n_features)
    **kwargs
        ``Booster.predict`` arguments; the fast path takes ``raw_score``, ``pred_leaf``,
        ``num_iteration`` and ``num_threads`` (ignored: one row runs on one thread).

    Returns
    -------
    ndarray
        What ``booster.predict`` returns: shape (1,) for scores, (1, n_trees) int32
        leaf indices with ``pred_leaf``.
    """
    fast = (
        _AVAILABLE
        and isinstance(X, np.ndarray)
        and X.ndim == 2
        and X.shape[0] == 1
        and X.dtype == np.float64
        and set(kwargs) <= _KNOWN
        and not (kwargs.get("raw_score") and kwargs.get("pred_leaf"))
    )
    if not fast or X.shape[1] != booster.num_feature():
        return booster.predict(X, **kwargs)
    num_iteration = kwargs.get("num_iteration")
    if num_iteration is None:  # as Booster.predict: the best iteration, if any
        num_iteration = booster.best_iteration
    num_iteration = int(num_iteration)
    predict_type = (
        _C_API_PREDICT_LEAF_INDEX
        if kwargs.get("pred_leaf")
        else _C_API_PREDICT_RAW_SCORE
        if kwargs.get("raw_score")
        else _C_API_PREDICT_NORMAL
    )
    copies = _COPIES.get(booster)
    private = None if copies is None else copies.get(num_iteration)
    if private is None:
        with _COPIES_LOCK:
            copies = _COPIES.setdefault(booster, {})
            private = copies.get(num_iteration)
            if private is None:
                private = copies[num_iteration] = _Private(booster, num_iteration)
    out = private(np.ascontiguousarray(X), predict_type)
    if predict_type == _C_API_PREDICT_LEAF_INDEX:
        return out.astype(np.int32).reshape(1, -1)
    return out if len(out) == 1 else out.reshape(1, -1)
