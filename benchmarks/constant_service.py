"""A bare BentoML service that scores one feature row with a LightGBM booster.

``benchmarks/serving_load.py`` trains the booster in the same run (similar size to the
churn model: ``BARE_TREES`` trees on ``BARE_FEATURES`` features), saves it and serves it
here next to fidelite, so fidelite's per-request cost is compared with the framework's
own ceiling for the same kind of work. Two endpoints, written as BentoML's examples write
them: ``/predict`` (a sync method, run in BentoML's thread pool) and ``/predict_async``
(an async method, run on the event loop); the faster one is the reference. Settings are
BentoML's defaults (access log and metrics on).
"""

from __future__ import annotations

import os

import bentoml
import lightgbm as lgb
import numpy as np

MODEL_ENV = "BARE_MODEL_PATH"


@bentoml.service(name="bare")
class Bare:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ[MODEL_ENV])
        self.names = self.booster.feature_name()

    def _score(self, features: dict[str, float]) -> dict[str, float]:
        row = np.array([[features.get(name, np.nan) for name in self.names]], dtype=np.float64)
        return {"churn_probability": float(self.booster.predict(row)[0])}

    @bentoml.api(route="/predict")
    def predict(self, features: dict[str, float]) -> dict[str, float]:
        return self._score(features)

    @bentoml.api(route="/predict_async")
    async def predict_async(self, features: dict[str, float]) -> dict[str, float]:
        return self._score(features)
