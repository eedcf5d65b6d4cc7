"""Batch scoring in chunks gives the scores of one batch."""

from __future__ import annotations

import pandas as pd

import fidelite.training.score as scoring


def test_scores_in_chunks_equal_one_batch(trained, monkeypatch):
    uri, model_uri = trained.tracking_uri, trained.result.model_uri
    whole = scoring.score(trained.inputs, model_uri=model_uri, tracking_uri=uri)
    monkeypatch.setattr(scoring, "SCORE_CHUNK_ROWS", 97)  # uneven chunks, the last short
    chunked = scoring.score(trained.inputs, model_uri=model_uri, tracking_uri=uri)
    assert len(whole) > 4 * 97
    pd.testing.assert_frame_equal(chunked, whole)
