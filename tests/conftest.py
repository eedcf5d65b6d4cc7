"""Shared fixtures for the whole test suite."""

import os

# The test run is a launcher: sleeping OpenMP waiters before anything loads LightGBM
# (busy-waiting threads make fits many times slower on a shared machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from fidelite.features.demo import DemoData, generate_demo_data


@pytest.fixture(scope="session")
def demo_data() -> DemoData:
    """A small deterministic demo customer base (1500 customers, seed 3), built once."""
    return generate_demo_data(1500, seed=3)
