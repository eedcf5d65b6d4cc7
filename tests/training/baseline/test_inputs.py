"""``check_rfm``'s one-test shortcut for float arrays accepts exactly what its checks do."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.training.baseline import inputs
from fidelite.training.baseline.inputs import _valid_float_rfm, check_rfm

GOOD = ([0.0, 2.0, 5.0], [0.0, 10.0, 30.0], [3.0, 10.0, 40.0])
BAD = [
    ([np.nan, 2.0, 5.0], GOOD[1], GOOD[2]),
    (GOOD[0], [0.0, np.inf, 30.0], GOOD[2]),
    (GOOD[0], GOOD[1], [3.0, 10.0, -40.0]),
    ([0.0, 2.5, 5.0], GOOD[1], GOOD[2]),  # fractional count
    (GOOD[0], [0.0, 10.0, 41.0], GOOD[2]),  # recency > T
    ([0.0, 2.0, 5.0], [1.0, 10.0, 30.0], GOOD[2]),  # frequency 0, recency > 0
    ([-1.0, 2.0, 5.0], GOOD[1], GOOD[2]),
]


def _arrays(triple):
    return tuple(np.array(values, dtype=float) for values in triple)


def test_the_shortcut_takes_only_valid_float_arrays_and_changes_no_value(monkeypatch):
    x, t_x, big_t = _arrays(GOOD)
    t_x[1] = 10.0 * (1 + 1e-13)  # within the tolerated round-off above T
    big_t[1] = 10.0
    assert _valid_float_rfm(x, t_x, big_t)
    fast = check_rfm(x, t_x, big_t)
    monkeypatch.setattr(inputs, "_valid_float_rfm", lambda *args: False)
    slow = check_rfm(x, t_x, big_t)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype == np.float64 and a.tobytes() == b.tobytes()
        assert not np.shares_memory(a, x) and not np.shares_memory(a, big_t)


@pytest.mark.parametrize("triple", BAD)
def test_every_refused_input_still_gets_the_check_that_names_it(triple):
    assert not _valid_float_rfm(*_arrays(triple))
    with pytest.raises(ValueError):
        check_rfm(*_arrays(triple))


def test_other_inputs_take_the_full_checks():
    x, t_x, big_t = _arrays(GOOD)
    assert not _valid_float_rfm(list(GOOD[0]), t_x, big_t)  # not arrays
    assert not _valid_float_rfm(x.astype(np.float32), t_x, big_t)
    assert not _valid_float_rfm(x[:2], t_x, big_t)  # lengths differ (broadcast by the checks)
    assert not _valid_float_rfm(x[:0], t_x[:0], big_t[:0])
    assert not _valid_float_rfm(x.reshape(3, 1), t_x, big_t)
    assert not _valid_float_rfm(x, t_x.reshape(3, 1), big_t)
    assert not _valid_float_rfm(x, t_x, big_t.reshape(3, 1))
