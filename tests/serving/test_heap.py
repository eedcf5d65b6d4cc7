"""The worker's garbage-collector settings (serving/heap.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fidelite.serving import heap


class _Node:
    """A plain object that can sit in a reference cycle and be weakly referenced."""

    def __init__(self) -> None:
        self.other: object = None


@pytest.fixture
def clean_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def _cycle() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_collects_first_then_exempts_what_is_alive(clean_gc: None) -> None:
    garbage = _cycle()  # garbage already: collected, not frozen
    kept = _Node()
    heap.settle()
    assert garbage() is None
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: no generation holds it


def test_settle_reclaims_cycles_of_replaced_state(clean_gc: None) -> None:
    """A replaced model's cycles were frozen while it was served: a plain collection
    skips them, the next settle (unfreeze, collect, freeze) reclaims them."""
    heap.settle()
    node = _Node()
    node.other = node
    ref = weakref.ref(node)
    gc.freeze()
    del node
    gc.collect()
    assert ref() is not None
    heap.settle()
    assert ref() is None


def test_tune_raises_only_the_young_threshold(clean_gc: None) -> None:
    _, middle, old = gc.get_threshold()
    heap.tune()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, middle, old)
