"""``Booster.predict`` of large batches from the compiled trees, same bits.

The uplift learners' boosters (four per model) were predicted by LightGBM itself: for the
10,000 customers of a large ``/predict`` that took ~350 ms on one thread, most of the
request. :func:`compiled_predict` evaluates the same trees with
:class:`~fidelite.training.forest.Forest` (LightGBM's raw scores, bit for bit, on both
cores) and applies the objective's output transform as LightGBM's C++ does: identity for
``regression``, ``1 / (1 + exp(-sigmoid * raw))`` for ``binary`` (``math.exp`` in
compiled code is the C library's ``exp``, as ``std::exp``). Other objectives are left to
LightGBM.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from fidelite.training.forest import FOREST_MIN_ROWS, Forest
from fidelite.training.forest_kernels import compiled

__all__ = ["FOREST_MIN_ROWS", "compiled_predict", "prepare"]

Output = Callable[[np.ndarray], np.ndarray]
#: Per booster (not pickled; freed with the booster): its trees and output transform.
_BUILT: weakref.WeakKeyDictionary[Any, tuple[Forest, Output | None]] = weakref.WeakKeyDictionary()
_OBJECTIVE = re.compile(r"^objective=(.*)$", re.MULTILINE)
_BINARY = re.compile(r"^binary sigmoid:([-+0-9.eE]+)$")


def compiled_predict(booster: Any, X: np.ndarray) -> np.ndarray | None:
    """``booster.predict(X)`` (its default iteration: the best one if it has one), shape
    (n,), from compiled trees; None when the objective is not ``regression`` or
    ``binary`` (the caller then asks LightGBM)."""
    forest, output = prepare(booster)
    return None if output is None else output(forest.raw_score(X))


def prepare(booster: Any) -> tuple[Forest, Output | None]:
    """The booster's compiled trees and output transform, built once (tens of
    milliseconds: ``training.arrays.warm_up`` calls this when a model is loaded)."""
    built = _BUILT.get(booster)
    if built is None:
        iteration = booster.best_iteration if booster.best_iteration > 0 else -1
        text = booster.model_to_string(num_iteration=iteration)
        built = _BUILT[booster] = (Forest(text), _output(text))
    return built


def _output(text: str) -> Output | None:
    """The output transform of the model text's objective, None if not handled here."""
    found = _OBJECTIVE.search(text)
    objective = found.group(1).strip() if found else ""
    if objective == "regression":
        return lambda raw: raw
    binary = _BINARY.match(objective)
    if binary is None:
        return None
    scale = float(binary.group(1))

    def probability(raw: np.ndarray) -> np.ndarray:
        out = np.empty(len(raw))
        _sigmoid(raw, scale, out)
        return out

    return probability


@compiled
def _sigmoid(raw, scale, out):
    for i in range(raw.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-scale * raw[i]))
