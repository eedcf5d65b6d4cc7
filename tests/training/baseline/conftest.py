"""Shared data for the baseline-model tests: the CDNOW 1/10 sample summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).parent / "data" / "cdnow_sample_summary.csv"


def load_cdnow() -> pd.DataFrame:
    """2,357 customers, times in weeks; ``holdout_days`` = purchase days in the next 39 weeks."""
    return pd.read_csv(DATA, comment="#")


def rfm(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency, T) as float arrays."""
    return tuple(frame[c].to_numpy(float) for c in ("frequency", "recency", "T"))


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    return load_cdnow()
