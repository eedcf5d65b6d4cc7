"""A bare BentoML service returning a constant: the framework's own floor.

``benchmarks/serving_load.py`` serves it next to fidelite so that per-request overhead
of BentoML itself can be told apart from feature validation and model time.
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel


class Echo(BaseModel):
    customer_id: str


@bentoml.service(name="constant")
class Constant:
    @bentoml.api(route="/constant")
    def constant(self, request: Echo, /) -> dict:
        return {"customer_id": request.customer_id, "churn_probability": 0.5}
