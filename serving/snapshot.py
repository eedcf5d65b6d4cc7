"""The latest scores snapshot (written by ``fidelite score``), reloaded when it changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd

SNAPSHOT_ENV = "FIDELITE_SNAPSHOT"
DEFAULT_SNAPSHOT = "data/scores.parquet"


def snapshot_path_from_env() -> Path:
    """``FIDELITE_SNAPSHOT`` or ``data/scores.parquet``."""
    return Path(os.environ.get(SNAPSHOT_ENV) or DEFAULT_SNAPSHOT)


class SnapshotUnavailableError(FileNotFoundError):
    """No readable snapshot at the configured path."""


class SnapshotStore:
    """Scores frame read from a parquet file, re-read whenever its mtime changes.

    Parameters
    ----------
    path : path-like
        Parquet file in the scores-frame layout (ARCHITECTURE.md).

    Attributes
    ----------
    frame_ : DataFrame or None
        Last loaded snapshot, indexed by ``customer_id`` (str).
    mtime_ns_ : int or None
        Modification time of the loaded file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.frame_: pd.DataFrame | None = None
        self.mtime_ns_: int | None = None
        self._lock = threading.Lock()

    def frame(self) -> pd.DataFrame:
        """The current snapshot, reloading it if the file changed since the last call.

        Raises
        ------
        SnapshotUnavailableError
            The file does not exist or lacks ``customer_id``.
        """
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError as exc:
            raise SnapshotUnavailableError(
                f"no scores snapshot at {self.path} ({SNAPSHOT_ENV}): run `fidelite score` "
                "to write one"
            ) from exc
        with self._lock:
            if self.frame_ is None or mtime_ns != self.mtime_ns_:
                self.frame_ = self._read()
                self.mtime_ns_ = mtime_ns
            return self.frame_

    def _read(self) -> pd.DataFrame:
        frame = pd.read_parquet(self.path)
        if "customer_id" not in frame:
            if frame.index.name != "customer_id":
                raise SnapshotUnavailableError(f"snapshot {self.path} has no customer_id column")
            frame = frame.reset_index()
        frame["customer_id"] = frame["customer_id"].astype(str)
        frame = frame.drop_duplicates("customer_id", keep="last")
        # keep customer_id as a column too: the scores frame carries it
        return frame.set_index(pd.Index(frame["customer_id"], name=None))

    def lookup(self, customer_ids: list[str]) -> tuple[pd.DataFrame, list[bool]]:
        """Rows for ``customer_ids`` and whether each id was found.

        Returns
        -------
        (found_rows, found) : (DataFrame, list of bool)
            ``found_rows`` holds the snapshot rows of the found ids in request order
            (repeated ids repeat);
            ``found`` has one flag per requested id.
        """
        frame = self.frame()
        present = pd.Index(customer_ids).isin(frame.index)
        wanted = [cid for cid, ok in zip(customer_ids, present, strict=False) if ok]
        return frame.loc[wanted], present.tolist()
