"""``UpliftModel``: what a contact is expected to change, per customer and channel.

Fitted by :func:`fidelite.training.uplift.fit_uplift`, pickled inside the logged
fidelite model and applied to the same feature rows as churn and CLV. For each customer
and each channel with campaign history it estimates

* ``uplift_purchase``: the change in P(purchase within the response window) if the
  customer is contacted on that channel (negative: the contact drives them away);
* ``response_value``: what winning the customer back is worth: ``value_if_retained``
  (expected net spend over the horizon if the customer stays, from the churn/CLV
  model) when the model was trained with it, else the expected net spend in the
  response window given a purchase (``value_basis``);
* ``uplift_value = uplift_purchase x response_value``: expected incremental net value
  of a contact (currency, before the offer's cost).

``uplift_channel`` is the channel with the highest estimate among the customer's
consented messaging channels that have history (None when there is none);
``uplift_by_channel`` holds every channel's ``uplift_purchase``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import lightgbm as lgb
import numpy as np
import pandas as pd

from fidelite.training.encoding import FeatureEncoder
from fidelite.training.uplift.contact import (
    CHANNEL_COLUMN,
    Columns,
    contact_columns_by_channel,
    contact_frame,
)
from fidelite.training.uplift.dataset import SCORE_INPUTS
from fidelite.training.uplift.learners import LEARNERS, lgbm_predict
from fidelite.training.uplift.policy import PolicyChoice, PolicyTable
from fidelite.training.uplift.scoring import (
    UPLIFT_SCORE_COLUMNS,
    channel_scores,
    consent_columns,
    uplift_score_arrays,
)
from fidelite.training.uplift.valuation import customer_value

__all__ = ["CHANNEL_COLUMN", "UPLIFT_SCORE_COLUMNS", "UpliftModel", "uplift_inputs"]


def uplift_inputs(features: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """Feature rows plus the ``score_*`` input columns taken from a scores frame.

    ``scores`` must be row-aligned with ``features`` (same order); None leaves the
    features as they are (they may carry ``score_*`` columns already).
    """
    if scores is None:
        return features
    present = [c for c in SCORE_INPUTS if c in scores.columns]
    extra = scores[present].apply(pd.to_numeric, errors="coerce").set_axis(features.index)
    extra.columns = [f"score_{c}" for c in present]
    return pd.concat([features.drop(columns=extra.columns, errors="ignore"), extra], axis=1)


class UpliftModel:
    """The chosen meta-learner, the response-value model and the policy evidence.

    Parameters
    ----------
    encoder : FeatureEncoder
        Fitted on the uplift inputs (features, ``score_*`` and ``contact_channel``).
    learner : fitted meta-learner
        One of :data:`fidelite.training.uplift.learners.LEARNERS`.
    response_model : LGBMRegressor
        Net spend in the window given a purchase.
    channels : tuple of str
        Contact channels seen in the treated history.
    window_days : int
        Response window the estimates refer to.
    policy : PolicyTable
        Held-out comparison of the candidates per budget share.
    trained_until : Timestamp
        As-of day of the campaigns used.
    value_basis : {"value_if_retained", "response_spend"}
        What ``response_value`` is (see :func:`~fidelite.training.uplift.valuation.
        customer_value`); fixed at fit time so one model never mixes the two.
    """

    def __init__(
        self,
        *,
        encoder: FeatureEncoder,
        learner: object,
        response_model: lgb.LGBMRegressor,
        channels: tuple[str, ...],
        window_days: int,
        policy: PolicyTable,
        trained_until: pd.Timestamp,
        value_basis: str = "response_spend",
    ) -> None:
        self.encoder = encoder
        self.learner = learner
        self.response_model = response_model
        self.channels = tuple(channels)
        self.window_days = int(window_days)
        self.policy = policy
        self.trained_until = pd.Timestamp(trained_until)
        self.value_basis = value_basis

    @property
    def learner_name(self) -> str:
        names = {cls: name for name, cls in LEARNERS.items()}
        return names.get(type(self.learner), type(self.learner).__name__)

    def _matrix(self, inputs: pd.DataFrame, channel: str | None) -> np.ndarray:
        # Encoders pickled before the contact inputs existed ignore the extra columns.
        return self.encoder.transform_array(contact_frame(inputs, channel))

    def _effects(self, matrices: list[np.ndarray], n: int) -> np.ndarray:
        """The learner's estimates of each channel's matrix (each (n, p)), shape
        (n, len(matrices)), in one pass (see ``predict_by_channel`` of the learners)."""
        if not matrices:
            return np.empty((n, 0))
        return self.learner.predict_by_channel(matrices)

    def uplift_by_channel(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Estimated change in P(purchase) per channel, shape (n_rows, len(channels))."""
        parts = contact_columns_by_channel(inputs, self.channels, len(inputs))
        matrices = [self.encoder.transform_array(inputs.assign(**part)) for part in parts]
        effects = self._effects(matrices, len(inputs))
        return pd.DataFrame(effects, index=inputs.index, columns=list(self.channels))

    def _value(self, inputs: Columns, n: int, spend_matrix: Callable[[], np.ndarray]) -> np.ndarray:
        """:meth:`response_value` given the response model's (lazily built) matrix."""
        # Models pickled before the value basis existed valued the response spend.
        basis = getattr(self, "value_basis", "response_spend")
        spend = (
            lgbm_predict(self.response_model, spend_matrix())
            if basis == "response_spend"
            else np.zeros(n)
        )
        return customer_value(inputs, basis, spend)

    def response_value(self, inputs: pd.DataFrame) -> np.ndarray:
        """What winning each customer back is worth, shape (n_rows,), currency, >= 0."""
        return self._value(inputs, len(inputs), lambda: self._matrix(inputs, None))

    def predict(self, inputs: pd.DataFrame, channel: np.ndarray | None = None) -> pd.DataFrame:
        """Uplift at a given contact channel per row (e.g. the channel a row was sent on).

        Parameters
        ----------
        inputs : DataFrame, shape (n_rows, ...)
            :func:`uplift_inputs` rows.
        channel : ndarray of str or None, shape (n_rows,), optional
            Channel per row; rows whose channel has no history (or None) get the
            mean over the history channels.

        Returns
        -------
        DataFrame, shape (n_rows, 3)
            ``uplift_purchase``, ``response_value``, ``uplift_value``.
        """
        by_channel = self.uplift_by_channel(inputs)
        purchase = by_channel.mean(axis=1).to_numpy().copy()
        if channel is not None:
            channel = np.asarray(channel, dtype=object)
            for name in self.channels:
                rows = channel == name
                purchase[rows] = by_channel[name].to_numpy()[rows]
        value = self.response_value(inputs)
        return pd.DataFrame(
            {
                "uplift_purchase": purchase,
                "response_value": value,
                "uplift_value": purchase * value,
            },
            index=inputs.index,
        )

    def add_scores(self, features: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
        """``scores`` with :data:`UPLIFT_SCORE_COLUMNS` appended (NaN/None where unscored).

        Parameters
        ----------
        features : DataFrame, shape (n, ...)
            The feature rows the scores were computed from, same order.
        scores : DataFrame, shape (n, ...)
            The scores frame (churn, CLV, consent columns...).
        """
        out = scores.copy()
        inputs = uplift_inputs(features.reset_index(drop=True), scores.reset_index(drop=True))
        estimates = self.uplift_by_channel(inputs).to_numpy()
        consent = {
            column: scores[column].fillna(False).to_numpy(dtype=bool)
            for column in consent_columns(self.channels)
            if column in scores
        }
        columns = channel_scores(self.channels, estimates, self.response_value(inputs), consent)
        for name, values in columns.items():
            out[name] = values
        if "status" in scores:
            scored = (scores["status"] == "ok").to_numpy()
            for column in UPLIFT_SCORE_COLUMNS:
                out.loc[~scored, column] = None
        return out

    def score_arrays(
        self, features: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray], n: int
    ) -> dict[str, np.ndarray]:
        """:meth:`add_scores` without DataFrames: the :data:`UPLIFT_SCORE_COLUMNS` only.

        Parameters
        ----------
        features : mapping of str -> ndarray, shape (n,)
            The feature columns the scores were computed from (as
            :meth:`FeatureEncoder.transform_columns` takes them).
        scores : mapping of str -> ndarray, shape (n,)
            The score columns (``status``, churn, CLV, consent...).
        n : int
            Number of rows.

        Returns
        -------
        dict of str -> ndarray, shape (n,)
            The same values as :meth:`add_scores` appends (None/NaN where unscored);
            only the rows whose ``status`` is ``ok`` are scored.
        """
        return uplift_score_arrays(self, features, scores, n)

    def choose_policy(self, budget_share: float | None) -> PolicyChoice:
        """The ranking policy to use at a budget share (see :class:`PolicyTable`)."""
        return self.policy.choose(budget_share)
