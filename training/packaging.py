"""What travels with a logged model: its signature, an input example, its requirements
and the code version that trained it."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

import fidelite
from fidelite.training.model import REQUIRED_INPUT_COLUMNS
from fidelite.training.windows import purchasers

__all__ = ["code_version", "input_example", "pip_requirements", "signature"]

# The pickled model needs these at load time, pinned to what trained it.
_RUNTIME_PACKAGES = (
    "fidelite",
    "mlflow",
    "lightgbm",
    "numba",
    "pandas",
    "numpy",
    "scikit-learn",
    "scipy",
    "cloudpickle",
)


def _column_type(series: pd.Series) -> str:
    """MLflow column type matching what ``build_features`` produces for this column."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_numeric_dtype(series):
        return "double"
    return "string"


def signature(features: pd.DataFrame) -> ModelSignature:
    """Input schema of a ``build_features`` frame; ``as_of`` and ``reasons`` as params.

    Params reach ``FideliteModel.predict`` through ``mlflow.pyfunc`` only when they are
    declared here: ``as_of`` (ISO date, "" = the training ``as_of``) and ``reasons``
    (bool, False skips the reason phrases). Only the columns the baseline cannot do
    without are required, so frames without events or customers (fewer columns) still
    score. Types follow ``build_features`` (MLflow refuses lossy casts such as int64
    to double).
    """
    specs = [ColSpec("string", "customer_id", required=False)]
    specs += [
        ColSpec(_column_type(features[col]), col, required=col in REQUIRED_INPUT_COLUMNS)
        for col in features.columns
    ]
    params = ParamSchema([ParamSpec("as_of", "string", ""), ParamSpec("reasons", "boolean", True)])
    return ModelSignature(inputs=Schema(specs), params=params)


def input_example(features: pd.DataFrame) -> pd.DataFrame:
    """Five purchasers' feature rows, ``customer_id`` as a column."""
    return purchasers(features).head(5).reset_index()


def pip_requirements() -> list[str]:
    """Pinned runtime requirements of the pickled model, ``fidelite`` itself included.

    Given explicitly because MLflow's inference of them loads the model in a
    subprocess (~10 s). The model's classes live in the ``fidelite`` distribution,
    which must be installed (at this version) wherever the model loads.
    """
    pinned = []
    for name in _RUNTIME_PACKAGES:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pinned


def code_version() -> dict[str, str | None]:
    """``fidelite`` version and, when running from a git checkout, its commit."""
    source = Path(fidelite.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"fidelite": fidelite.__version__, "git_commit": commit or None}
