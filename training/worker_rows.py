"""Every customer's training rows, kept where they are computed: on the Dask workers.

A Dask training run over its client budget (``training.sources.CLIENT_CUSTOMERS``)
brings only a uniform customer sample's feature rows to the client. The client fits
the encoder, the window levels, the held-out evaluation and the intervals on that
sample; the churn and spend *trees* are fitted on the rows of **every** customer,
where those rows live (:class:`WorkerRows`):

1. at each training cutoff, every customer bucket builds its customers' features,
   predicts the baseline columns with the baseline fitted on the client at that cutoff
   (on every purchaser's RFM columns), computes the outcomes and keeps the compact
   model-input columns with three labels (purchaser, churned, future spend): one stored
   frame per (bucket, cutoff), built once and shared by the purchasers' and the
   prospects' models;
2. for one model, each stored frame is turned into its training rows: the population
   (purchasers or prospects; buyers only for spend), encoded with the client's encoder
   (its matrix's columns and category lists: :func:`encoder_of`), the target and the
   starting score (the model's baseline start plus its window's level);
3. ``lightgbm.DaskLGBMClassifier`` / ``DaskLGBMRegressor`` trains on those partitions in
   place (``training.distributed``), with the tree count that an early-stopped fit of
   the client's sample chose; ``.to_local()`` gives the plain model the pipeline keeps.

The rows are switched on for a block of code with :func:`fitting_on` (a context
variable), so ``training.hurdle.fit_hurdle`` runs unchanged: the Dask estimators look the
rows up when they fit. The training run releases them after the fit. Only the time
hold-out is supported (the training rows are whole windows); in "customers" mode the
trees stay on the sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fidelite.features.contract import model_input_features
from fidelite.features.purchases import is_purchaser
from fidelite.training.baseline.model import RFM_COLUMNS
from fidelite.training.encoding import FeatureEncoder
from fidelite.training.labels import labels_from_outcomes
from fidelite.training.levels import WindowLevels
from fidelite.training.windows import compact

if TYPE_CHECKING:
    from distributed import Client, Future

    from fidelite.features.distributed import EncodedPartitions
    from fidelite.training.baseline import BaselineModel

__all__ = [
    "INIT_SCORE",
    "TARGET",
    "WorkerRows",
    "current_worker_rows",
    "encoder_of",
    "fitting_on",
]

#: Columns of a training partition next to the model matrix.
TARGET, INIT_SCORE = "__target__", "__init_score__"
# Labels stored with every (bucket, cutoff) frame.
_PURCHASER, _CHURNED, _SPEND = "__purchaser__", "__churned__", "__future_spend__"

_CURRENT: ContextVar[WorkerRows | None] = ContextVar("fidelite_worker_rows", default=None)


def current_worker_rows() -> WorkerRows | None:
    """The rows switched on by :func:`fitting_on` (None: fit on the client's rows)."""
    return _CURRENT.get()


@contextmanager
def fitting_on(rows: WorkerRows | None) -> Iterator[WorkerRows | None]:
    """Fit the Dask estimators used in this block on ``rows`` (None: the client's rows).

    The stored frames stay on the workers for the next block (the purchasers' and the
    prospects' models share them) until :meth:`WorkerRows.release`.
    """
    token = _CURRENT.set(rows)
    try:
        yield rows
    finally:
        _CURRENT.reset(token)


def encoder_of(schema: pd.DataFrame) -> FeatureEncoder:
    """The encoder whose ``transform`` gives matrices like ``schema`` (0 rows is enough).

    ``FeatureEncoder.transform`` depends only on the numeric column list and the
    categories of each categorical column, both readable from a matrix it made: numeric
    columns first, then the categoricals with their frozen category lists.
    """
    categories = {
        column: [str(level) for level in dtype.categories]
        for column, dtype in schema.dtypes.items()
        if isinstance(dtype, pd.CategoricalDtype)
    }
    encoder = FeatureEncoder()
    encoder.numeric_features_ = [c for c in schema.columns if c not in categories]
    encoder.categories_ = categories
    encoder.unsupported_features_ = []
    encoder.feature_names_ = [*encoder.numeric_features_, *categories]
    if encoder.feature_names_ != list(schema.columns):
        raise ValueError("a model matrix lists its numeric columns before its categorical ones")
    return encoder


@dataclass
class WorkerRows:
    """The training windows' rows of every customer, on the Dask workers.

    Parameters
    ----------
    encoded : EncodedPartitions
        The customer buckets, encoded once on the workers.
    cutoffs : list of Timestamp
        The training windows' cutoffs (their rows train the trees).
    baselines : dict of Timestamp -> BaselineModel
        The baseline fitted on every purchaser at each of those cutoffs.
    horizon_days : int
        Label horizon ``H``.
    purchasers : bool
        Which population the models being fitted are for (:meth:`population`).
    """

    encoded: EncodedPartitions
    cutoffs: list[pd.Timestamp]
    baselines: dict[pd.Timestamp, BaselineModel]
    horizon_days: int
    purchasers: bool = True
    _frames: list[tuple[pd.Timestamp, Future]] = field(default_factory=list, repr=False)

    @property
    def client(self) -> Client:
        return self.encoded.client

    def population(self, purchasers: bool) -> WorkerRows:
        """The same rows for the purchasers' (True) or the prospects' models.

        Both share the stored frames once either has built them.
        """
        return replace(self, purchasers=purchasers, _frames=self._frames)

    def release(self) -> None:
        """Drop the stored frames: the workers free them."""
        self._frames.clear()

    def _stored(self) -> list[tuple[pd.Timestamp, Future]]:
        """One frame per (training cutoff, bucket), built on first use and kept."""
        if self._frames:
            return self._frames
        from fidelite.features.cluster import wait_for
        from fidelite.features.data import as_of_bounds

        client, buckets = self.client, self.encoded.buckets
        for cutoff in self.cutoffs:
            day, _ = as_of_bounds(cutoff)
            futures = client.map(
                _window_part,
                buckets,
                day=day,
                vocabulary=self.encoded.vocabulary(day),
                baseline=self.baselines[cutoff],
                horizon_days=self.horizon_days,
                pure=False,
            )
            wait_for(client, futures, what=f"training rows at {day.date()}", gather=False)
            self._frames.extend((cutoff, f) for f in futures)
        return self._frames

    def training_data(
        self, schema: pd.DataFrame, model: Any, start_levels: WindowLevels, target: str
    ) -> tuple[Any, int]:
        """A model's training rows as a dask DataFrame, and how many rows it holds.

        Parameters
        ----------
        schema : DataFrame
            The client's model matrix (0 rows is enough): columns and categories.
        model : BoostedModel
            Unfitted copy of the model: its ``_start`` gives each row's baseline score.
        start_levels : WindowLevels
            Each training window's level given the start score alone.
        target : {"churned", "future_spend"}
            The churn model's rows (everyone in the population) or the spend model's
            (those who bought in their window; spend floored at 0.01).

        Returns
        -------
        data : dask DataFrame
            ``schema``'s columns, :data:`TARGET` and :data:`INIT_SCORE`; one partition per
            non-empty (bucket, cutoff), left where it was computed.
        n_rows : int
        """
        import dask.dataframe as dd

        from fidelite.features.cluster import wait_for

        stored = self._stored()
        client = self.client
        parts = [
            client.submit(
                _training_part,
                frame,
                schema=schema.iloc[:0],
                model=model,
                offset=start_levels.offset_of(cutoff),
                target=target,
                purchasers=self.purchasers,
                pure=False,
            )
            for cutoff, frame in stored
        ]
        sizes = wait_for(client, client.map(len, parts, pure=False), what="training rows")
        kept = _one_part_per_worker(client, [p for p, n in zip(parts, sizes, strict=True) if n])
        del parts  # the per-bucket parts are freed once merged
        y_dtype = int if target == "churned" else float
        meta = schema.iloc[:0].assign(
            **{TARGET: np.array([], dtype=y_dtype), INIT_SCORE: np.array([], dtype=float)}
        )
        return dd.from_delayed(kept, meta=meta, verify_meta=False), int(sum(sizes))


def _one_part_per_worker(client: Client, parts: list[Future]) -> list[Future]:
    """The parts merged into one frame per worker that holds some, on that worker.

    ``lightgbm.dask`` concatenates each worker's parts inside its training task, where
    memory cannot be spilled: a second copy of the worker's rows next to the parts and
    LightGBM's own float matrix (the 5M run lost its workers to that at 95% of 6.5 GiB).
    One part per worker makes LightGBM's concatenation a view (pandas copy-on-write).
    """
    import pandas as pd

    from fidelite.features.cluster import wait_for

    by_worker: dict[str, list[Future]] = {}
    for part in parts:
        holders = client.who_has([part]).get(part.key) or ("",)
        by_worker.setdefault(sorted(holders)[0], []).append(part)
    merged = [
        client.submit(pd.concat, group, workers=[worker] if worker else None, pure=False)
        for worker, group in sorted(by_worker.items())
    ]
    wait_for(client, merged, what="training rows merged per worker", gather=False)
    return merged


def _window_part(
    encoded: Any,
    day: pd.Timestamp,
    vocabulary: Any,
    baseline: BaselineModel,
    horizon_days: int,
) -> pd.DataFrame:
    """On a worker: a bucket's customers at ``day``, as the models could see them.

    The model-input columns (compact, as the client's windows), the baseline columns of
    the purchasers (NaN for prospects) and the labels over ``(day, day + H]``.
    """
    features = encoded.customer_features(day, vocabulary=vocabulary)
    buying = is_purchaser(features).to_numpy()
    outcomes = encoded.outcomes(day, horizon_days, features.index)
    labels = labels_from_outcomes(outcomes)
    predicted = baseline.predict(features.loc[buying, list(RFM_COLUMNS)])
    rows = features[model_input_features(features.columns)].join(predicted)
    rows = compact(rows)
    return rows.assign(
        **{
            _PURCHASER: buying,
            _CHURNED: labels["churned"].to_numpy(),
            _SPEND: labels["future_spend"].to_numpy(),
        }
    )


def _training_part(
    frame: pd.DataFrame,
    schema: pd.DataFrame,
    model: Any,
    offset: float,
    target: str,
    purchasers: bool,
) -> pd.DataFrame:
    """On a worker: one stored frame's training rows for one model (see ``training_data``)."""
    rows = frame[frame[_PURCHASER].to_numpy(dtype=bool) == purchasers]
    if target == "future_spend":
        rows = rows[rows[_CHURNED].to_numpy() == 0]
        y = np.clip(rows[_SPEND].to_numpy(dtype=float), 0.01, None)
    elif target == "churned":
        y = rows[_CHURNED].to_numpy().astype(int)
    else:
        raise ValueError(f"target must be 'churned' or 'future_spend', got {target!r}")
    X = encoder_of(schema).transform(rows)
    init = model._start(X) + offset
    return X.assign(**{TARGET: y, INIT_SCORE: np.asarray(init, dtype=float)})
