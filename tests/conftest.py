"""Shared fixtures for the whole test suite."""

import pytest

from fidelite.features.demo import DemoData, generate_demo_data


@pytest.fixture(scope="session")
def demo_data() -> DemoData:
    """A small deterministic demo customer base (1500 customers, seed 3), built once."""
    return generate_demo_data(1500, seed=3)
