"""Service settings, read once from the environment and validated as a whole.

Every setting is an environment variable (documented in the README and below). A bad
value raises :class:`fidelite.errors.ConfigurationError` naming the variable, so that
``fidelite serve`` exits at once with one line instead of a worker crash-looping.

=================================  =======================  ===============================
variable                           default                  meaning
=================================  =======================  ===============================
``FIDELITE_API_KEYS``              (none)                   comma-separated Bearer keys
``FIDELITE_AUTH``                  ``on``                   ``off`` runs without keys
``FIDELITE_METRICS_AUTH``          ``off``                  ``on``: /metrics needs a key
``FIDELITE_SNAPSHOT``              (none)                   scores Parquet for lookups
``FIDELITE_MAX_BATCH``             10000                    customers/ids per request
``FIDELITE_MAX_BODY_BYTES``        67108864 (64 MiB)        request body limit
``FIDELITE_WORKERS``               CPU cores (max 4)        server processes
``FIDELITE_SCORING_THREADS``       1                        parts of a large predict call
``FIDELITE_MODEL_URI``             (none)                   registry URI to follow
``FIDELITE_RELOAD_SECONDS``        60                       champion check; 0/off = never
``FIDELITE_SNAPSHOT_CHECK_SECONDS`` 2                       snapshot file check interval
``FIDELITE_HEADER_TIMEOUT``        10                       seconds to send request headers
``FIDELITE_BODY_TIMEOUT``          30                       seconds to send the body
``FIDELITE_WINBACK_LIMIT``         100                      default /winback page size
``FIDELITE_TRACING``               ``off``                  ``on``: BentoML's OpenTelemetry
                                                            tracing as configured for it
=================================  =======================  ===============================

Tracing: fidelite exports no traces itself, and BentoML records none unless its own
``tracing`` configuration sets an exporter and a sample rate. Its OpenTelemetry
middleware still opens spans for every request and every response message, ~0.2-0.3 ms
of CPU per request (a tenth of a one-customer prediction), so by default every path is
excluded from it. ``FIDELITE_TRACING=on`` keeps it, for deployments that configure
BentoML tracing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fidelite.errors import ConfigurationError

API_KEYS_ENV = "FIDELITE_API_KEYS"
AUTH_ENV = "FIDELITE_AUTH"
METRICS_AUTH_ENV = "FIDELITE_METRICS_AUTH"
SNAPSHOT_ENV = "FIDELITE_SNAPSHOT"
MAX_BATCH_ENV = "FIDELITE_MAX_BATCH"
MAX_BODY_BYTES_ENV = "FIDELITE_MAX_BODY_BYTES"
WORKERS_ENV = "FIDELITE_WORKERS"
SCORING_THREADS_ENV = "FIDELITE_SCORING_THREADS"
MODEL_URI_ENV = "FIDELITE_MODEL_URI"
RELOAD_ENV = "FIDELITE_RELOAD_SECONDS"
SNAPSHOT_CHECK_ENV = "FIDELITE_SNAPSHOT_CHECK_SECONDS"
HEADER_TIMEOUT_ENV = "FIDELITE_HEADER_TIMEOUT"
BODY_TIMEOUT_ENV = "FIDELITE_BODY_TIMEOUT"
WINBACK_LIMIT_ENV = "FIDELITE_WINBACK_LIMIT"
TRACING_ENV = "FIDELITE_TRACING"
#: Set by ``fidelite serve``: the BentoML model tag to serve.
BENTO_MODEL_ENV = "FIDELITE_BENTO_MODEL"
DEFAULT_MODEL_URI = "models:/fidelite@champion"

_ON, _OFF = {"on", "true", "1", "yes"}, {"off", "false", "0", "no"}


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None or not value.strip() else value.strip()


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _text(env, name)
    if value is None:
        return default
    if value.lower() in _ON:
        return True
    if value.lower() in _OFF:
        return False
    raise ConfigurationError(f"{name} must be on or off, got {value!r}", field=name)


def _number(env: Mapping[str, str], name: str, default: float, *, whole: bool = True) -> float:
    value = _text(env, name)
    if value is None:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigurationError(f"{name} must be {kind} > 0, got {value!r}", field=name) from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigurationError(f"{name} must be > 0, got {value!r}", field=name)
    return number


def _interval(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds > 0, or 0 for "never" (also ``off``)."""
    value = _text(env, name)
    if value is not None and value.lower() in _OFF:
        return 0.0
    return _number(env, name, default, whole=False)


def default_workers() -> int:
    """One worker per core, at most 4 (each holds its own model and snapshot copy)."""
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class ServiceSettings:
    """All settings of the service (see the module docstring for the variables)."""

    api_keys: tuple[str, ...] = ()
    auth: bool = True
    metrics_auth: bool = False
    snapshot: Path | None = None
    max_batch: int = 10_000
    max_body_bytes: int = 64 * 1024 * 1024
    workers: int = 1
    # One: the model spreads a large batch over the cores itself (its compiled trees,
    # training/forest.py); more parts only help models without threads of their own.
    scoring_threads: int = 1
    model_uri: str | None = None
    reload_seconds: float = 60.0
    snapshot_check_seconds: float = 2.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    winback_limit: int = 100
    tracing: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read and validate every setting.

        Raises
        ------
        ConfigurationError
            Naming the first invalid variable, e.g. a non-numeric ``FIDELITE_MAX_BATCH``
            or authentication on (the default) without any key.
        """
        env = os.environ if env is None else env
        auth = _switch(env, AUTH_ENV, True)
        raw_keys = env.get(API_KEYS_ENV)
        keys = tuple(k.strip() for k in (raw_keys or "").split(",") if k.strip())
        if auth and not keys:
            state = "is not set" if raw_keys is None else "holds no key"
            raise ConfigurationError(
                f"{API_KEYS_ENV} {state}: give comma-separated API keys, or set "
                f"{AUTH_ENV}=off to run without authentication",
                field=API_KEYS_ENV,
            )
        snapshot = _text(env, SNAPSHOT_ENV)
        settings = cls(
            api_keys=keys if auth else (),
            auth=auth,
            metrics_auth=_switch(env, METRICS_AUTH_ENV, False),
            snapshot=None if snapshot is None else Path(snapshot),
            max_batch=int(_number(env, MAX_BATCH_ENV, cls.max_batch)),
            max_body_bytes=int(_number(env, MAX_BODY_BYTES_ENV, cls.max_body_bytes)),
            workers=int(_number(env, WORKERS_ENV, default_workers())),
            scoring_threads=int(_number(env, SCORING_THREADS_ENV, cls.scoring_threads)),
            model_uri=_text(env, MODEL_URI_ENV),
            reload_seconds=_interval(env, RELOAD_ENV, cls.reload_seconds),
            snapshot_check_seconds=_interval(env, SNAPSHOT_CHECK_ENV, cls.snapshot_check_seconds),
            header_timeout=_number(env, HEADER_TIMEOUT_ENV, cls.header_timeout, whole=False),
            body_timeout=_number(env, BODY_TIMEOUT_ENV, cls.body_timeout, whole=False),
            winback_limit=int(_number(env, WINBACK_LIMIT_ENV, cls.winback_limit)),
            tracing=_switch(env, TRACING_ENV, False),
        )
        if settings.metrics_auth and not settings.auth:
            raise ConfigurationError(
                f"{METRICS_AUTH_ENV}=on needs authentication ({AUTH_ENV}=on and {API_KEYS_ENV})",
                field=METRICS_AUTH_ENV,
            )
        if settings.winback_limit > settings.max_batch:
            raise ConfigurationError(
                f"{WINBACK_LIMIT_ENV} ({settings.winback_limit}) must not exceed "
                f"{MAX_BATCH_ENV} ({settings.max_batch})",
                field=WINBACK_LIMIT_ENV,
            )
        return settings

    def bentoml_options(self) -> dict[str, dict[str, str]]:
        """Options for ``bentoml.service`` that depend on settings: every path excluded
        from BentoML's OpenTelemetry middleware unless ``FIDELITE_TRACING`` is on (then
        BentoML's own tracing configuration applies untouched)."""
        return {} if self.tracing else {"tracing": {"excluded_urls": ".*"}}
