"""The Dask and single-machine engines give the same windows, baseline and scores.

On a small data set and a real LocalCluster: features and labels at every backtest
cutoff (computed on the workers from Parquet files the client never reads), the
BG/NBD + Gamma-Gamma parameters fitted on them (to 1e-6), and the scores of one model
(to 1e-6).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features.demo import generate_demo_data, write_demo_data
from fidelite.features.distributed import dask_client
from fidelite.features.inputs import load_inputs
from fidelite.features.params import FeatureParams
from fidelite.training.config import TrainConfig
from fidelite.training.distributed import score_dask
from fidelite.training.score import score
from fidelite.training.sources import DaskWindows, LocalWindows
from fidelite.training.train import train
from fidelite.training.windows import backtest_cutoffs, build_window

pytestmark = pytest.mark.slow

AS_OF = pd.Timestamp("2025-09-30")
HORIZON = 60


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_demo_data(generate_demo_data(800, seed=13), tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def inputs(paths):
    tables = (paths["transactions"], paths["events"], paths["customers"])
    return load_inputs(*tables, as_of=AS_OF, cut=True)


@pytest.fixture(scope="module")
def engines(paths, inputs):
    params = FeatureParams()
    with dask_client(workers=2, threads_per_worker=1) as client:
        dask = DaskWindows.from_tables(
            str(paths["transactions"]),
            str(paths["events"]),
            str(paths["customers"]),
            as_of=AS_OF,
            params=params,
            npartitions=3,
        )
        cutoffs = backtest_cutoffs(
            dask.encoded.first_day(), AS_OF, horizon_days=HORIZON, n_windows=3, step_days=45
        )
        local = LocalWindows(inputs, params)
        yield {
            "client": client,
            "source": dask,
            "cutoffs": cutoffs,
            "local": [build_window(local, c, HORIZON) for c in cutoffs],
            "dask": [build_window(dask, c, HORIZON) for c in cutoffs],
            "scored": (local.features(AS_OF), dask.features(AS_OF)),
        }


def test_same_features_and_labels_at_every_cutoff(engines):
    assert len(engines["cutoffs"]) == 3
    for local, dask in zip(engines["local"], engines["dask"], strict=True):
        assert local.cutoff == dask.cutoff
        pd.testing.assert_frame_equal(dask.labels, local.labels)
        assert local.labels["churned"].nunique() == 2
        pd.testing.assert_frame_equal(
            dask.features, local.features, check_exact=False, rtol=1e-9, atol=1e-12
        )
    local_now, dask_now = engines["scored"]
    pd.testing.assert_frame_equal(dask_now, local_now, check_exact=False, rtol=1e-9, atol=1e-12)


def test_same_baseline_parameters(engines):
    from fidelite.training.baseline import BaselineModel

    for local, dask in zip(engines["local"], engines["dask"], strict=True):
        fitted = [BaselineModel(HORIZON).fit(w.features) for w in (local, dask)]
        for part in ("purchase_model_", "spend_model_"):
            a, b = (getattr(model, part).params_ for model in fitted)
            assert a.keys() == b.keys()
            np.testing.assert_allclose([b[k] for k in a], [a[k] for k in a], rtol=1e-6)


def test_same_scores(engines, paths, inputs, tmp_path):
    config = TrainConfig(
        horizon_days=HORIZON,
        n_windows=3,
        step_days=45,
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        register=False,
        n_jobs=1,
    )
    model_uri = train(inputs, config).model_uri
    uri = config.tracking_uri
    local = score(inputs, model_uri=model_uri, tracking_uri=uri).reset_index(drop=True)
    tables = (str(paths["transactions"]), str(paths["events"]), str(paths["customers"]))
    distributed = score_dask(*tables, as_of=AS_OF, model_uri=model_uri, tracking_uri=uri)
    assert (local["status"] == "ok").sum() > 100
    pd.testing.assert_frame_equal(distributed, local, check_exact=False, rtol=1e-6, atol=1e-9)


def test_same_data_fingerprint(engines, paths, inputs):
    from fidelite.training.sources import DaskWindows, LocalWindows
    from fidelite.training.tracking import data_fingerprint

    local = LocalWindows(inputs, FeatureParams()).fingerprint()
    assert local == data_fingerprint(inputs)
    tables = (str(paths["transactions"]), str(paths["events"]), str(paths["customers"]))
    dask = DaskWindows.from_tables(*tables, as_of=AS_OF, params=FeatureParams(), npartitions=2)
    assert dask.fingerprint() == local
    assert local["transactions_rows"] == len(inputs.transactions)


def test_sampled_windows_are_the_full_windows_of_the_sample(engines, paths):
    """Over its client budget a Dask run gathers a customer sample's rows: the same rows
    and labels as the full windows, with the baseline still fitted on every purchaser."""
    tables = (str(paths["transactions"]), str(paths["events"]), str(paths["customers"]))
    sampled = DaskWindows.from_tables(
        *tables, as_of=AS_OF, params=FeatureParams(), npartitions=3, client_customers=400
    )
    assert 0.3 < sampled.keep < 0.7  # 800 customers, 400 of them wanted
    chosen = None
    for cutoff, full in zip(engines["cutoffs"], engines["dask"], strict=True):
        window = build_window(sampled, cutoff, HORIZON)
        for rows, labels, all_rows, all_labels in (
            (window.features, window.labels, full.features, full.labels),
            (window.prospects, window.prospect_labels, full.prospects, full.prospect_labels),
        ):
            assert 0.3 * len(all_rows) < len(rows) < 0.7 * len(all_rows)
            assert rows.index.is_monotonic_increasing
            pd.testing.assert_frame_equal(labels, all_labels.loc[rows.index])
            # rfm_segment ranks a customer within the rows gathered: the sample here.
            columns = [c for c in all_rows.columns if c != "rfm_segment"]
            pd.testing.assert_frame_equal(
                rows[columns],
                all_rows.loc[rows.index, columns],
                check_exact=False,
                rtol=1e-6,
                check_categorical=False,
            )
        # The same customers at every cutoff: a customer once in the sample stays in it.
        ids = set(window.features.index) | set(window.prospects.index)
        if chosen is not None:
            assert chosen <= ids
        chosen = ids


def test_worker_rows_are_the_windows_rows(engines):
    """Every customer's training rows built on the workers (what the Dask trees fit over
    the client budget) equal the single-machine window's rows: encoded columns, target,
    and starting score (baseline start + window level), for both populations and both
    boosted models."""
    from fidelite.training.churn import ChurnModel
    from fidelite.training.encoding import FeatureEncoder
    from fidelite.training.levels import WindowLevels
    from fidelite.training.spend import SpendModel
    from fidelite.training.windows import window_and_baseline
    from fidelite.training.worker_rows import INIT_SCORE, TARGET, WorkerRows

    source, cutoff, local = engines["source"], engines["cutoffs"][-1], engines["local"][-1]
    baseline = window_and_baseline(source, cutoff, HORIZON)[1]
    levels = WindowLevels([cutoff], [0.25])
    stored = WorkerRows(source.encoded, [cutoff], {cutoff: baseline}, HORIZON)
    for buyers, frame, labels in (
        (True, local.features, local.labels),
        (False, local.prospects, local.prospect_labels),
    ):
        X = FeatureEncoder().fit(frame).transform(frame)
        assert any(isinstance(t, pd.CategoricalDtype) for t in X.dtypes)
        rows = stored.population(buyers)
        for model, target in (
            (ChurnModel(boost_from_baseline=buyers), "churned"),
            (SpendModel(start_from_baseline=buyers), "future_spend"),
        ):
            mask = np.ones(len(X), bool)
            if target == "future_spend":
                mask = labels["churned"].to_numpy() == 0
            data, n_rows = rows.training_data(X.iloc[:0], model, levels, target)
            # One part per worker: LightGBM's per-worker concatenation is then a view.
            assert data.npartitions <= len(engines["client"].scheduler_info()["workers"])
            got = data.compute().sort_index()
            assert n_rows == mask.sum() == len(got) > 0
            pd.testing.assert_frame_equal(
                got[list(X.columns)], X.loc[mask], check_exact=False, rtol=1e-6
            )
            y = labels[target].to_numpy()[mask]
            y = y if target == "churned" else np.clip(y, 0.01, None)
            np.testing.assert_allclose(got[TARGET].to_numpy(), y, rtol=1e-9)
            start = model._start(X.loc[mask]) + 0.25
            np.testing.assert_allclose(got[INIT_SCORE].to_numpy(), start, rtol=1e-6)
    stored.release()
