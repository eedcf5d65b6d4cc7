"""How the training pipeline reports progress: a callback receiving finished steps.

The library never draws anything: the CLI renders :class:`Step` events as a progress
bar, benchmarks read their timings, tests ignore them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["OnStep", "Step", "StepClock"]


@dataclass(frozen=True)
class Step:
    """One finished step of a training run.

    Attributes
    ----------
    name : str
        Stable key of the kind of step: ``window``, ``features``, ``fit``, ``champion``,
        ``log``, ``register`` (a key may repeat, e.g. once per window).
    message : str
        What was done, for people (``"window 2025-04-02: 16,310 customers"``).
    seconds : float
        Wall-clock seconds the step took.
    done, total : int
        Steps finished so far and expected in all (``total`` may grow by a little
        when a run registers and promotes).
    """

    name: str
    message: str
    seconds: float
    done: int
    total: int


#: The progress callback type.
OnStep = Callable[[Step], None]


def _ignore(step: Step) -> None:
    """The default callback: progress goes nowhere."""


@dataclass
class StepClock:
    """Times steps and reports them to ``on_step``; ``seconds`` sums them by name."""

    total: int
    on_step: OnStep = _ignore
    done: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    _started: float = field(default=0.0, repr=False)

    def elapsed(self) -> float:
        """Seconds since the current step started (for rates in its message)."""
        return time.perf_counter() - self._started

    @contextmanager
    def step(self, name: str, message: str = "") -> Iterator[list[str]]:
        """Time the block; the block may set the message by appending to the yielded list."""
        start = self._started = time.perf_counter()
        notes: list[str] = []
        yield notes
        elapsed = time.perf_counter() - start
        self.done += 1
        self.total = max(self.total, self.done)
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        self.on_step(
            Step(name, notes[-1] if notes else message or name, elapsed, self.done, self.total)
        )
