"""Everything that defines a training run, in one typed object (all of it is logged)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fidelite.features.params import FeatureParams
from fidelite.training.labels import check_horizon
from fidelite.training.tracking import DEFAULT_EXPERIMENT

__all__ = ["ENGINES", "TrainConfig"]

ENGINES = ("pandas", "dask")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the data and its as-of day come separately, as ``Inputs``).

    Parameters
    ----------
    horizon_days : int
        Prediction horizon ``H`` in days.
    n_windows : int
        Backtest windows wanted (at least 2 for LightGBM: the newest is held out).
    step_days : int, optional
        Days between consecutive backtest cutoffs; None steps by ``horizon_days`` so
        label windows do not overlap. Smaller steps give overlapping windows, which is
        how short histories get enough of them.
    min_history_days : int, optional
        Days of data required before each cutoff; None means ``max(horizon_days, 90)``.
    baseline_only : bool
        Fit only BG/NBD + Gamma-Gamma (works with too little history for windows).
    feature_params : FeatureParams
        Feature windows and thresholds; they travel inside the logged model.
    churn_params, spend_params, timing_params : mapping
        Constructor overrides of ``ChurnModel``, ``SpendModel`` and ``TimingModel`` (e.g.
        ``{"trees": Trees(n_estimators=100)}``), for purchasers and prospects alike.
    n_jobs : int
        LightGBM threads. Use 1 on a busy machine.
    engine : {"pandas", "dask"}
        Where features and LightGBM fits run; "dask" uses the current Dask client
        (``training.distributed``). The logged model is the same either way.
    experiment, model_name : str
        MLflow experiment and registered model names.
    tracking_uri : str, optional
        MLflow tracking/registry URI (``training.tracking.resolve_tracking_uri``).
    register : bool
        Register the logged model as a new version with the ``challenger`` alias.
    promote : bool
        Run the promotion gate after registering.
    gate_tolerance : float
        Allowed shortfall per gate metric when promoting.
    """

    horizon_days: int = 90
    n_windows: int = 4
    step_days: int | None = None
    min_history_days: int | None = None
    baseline_only: bool = False
    feature_params: FeatureParams = field(default_factory=FeatureParams)
    churn_params: Mapping[str, Any] = field(default_factory=dict)
    spend_params: Mapping[str, Any] = field(default_factory=dict)
    timing_params: Mapping[str, Any] = field(default_factory=dict)
    n_jobs: int = 2
    engine: Literal["pandas", "dask"] = "pandas"
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = "fidelite"
    tracking_uri: str | None = None
    register: bool = True
    promote: bool = False
    gate_tolerance: float = 0.005

    def __post_init__(self) -> None:
        check_horizon(self.horizon_days)
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.n_windows < 1:
            raise ValueError(f"n_windows must be at least 1, got {self.n_windows}")
