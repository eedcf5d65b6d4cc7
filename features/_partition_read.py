"""Input partitions of the Dask path: local Parquet row groups read by the workers.

A local Parquet file or directory is cut into runs of whole row groups (at most
:data:`ROW_GROUP_BYTES` uncompressed, from the footers) that a worker reads itself with
pyarrow, only the contract's columns, inside the task that normalises and buckets them:
no Dask ``read_parquet`` graph on the client, no raw partition stored between two tasks.
Other sources (URLs, globs, CSV, frames) return ``None`` and go through Dask's readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ROW_GROUP_BYTES", "ParquetPart", "parquet_parts"]

#: Uncompressed bytes of row groups read by one task (several row groups may share one).
ROW_GROUP_BYTES = 128 * 2**20


@dataclass(frozen=True)
class ParquetPart:
    """Whole row groups of one local Parquet file: one input partition.

    Attributes
    ----------
    path : str
    row_groups : tuple of int
    """

    path: str
    row_groups: tuple[int, ...]

    def read(self, columns: Sequence[str]) -> pd.DataFrame:
        """The row groups' ``columns`` (those the file has); text as Arrow-backed ``str``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        file = pq.ParquetFile(self.path)
        wanted = [c for c in columns if c in file.schema_arrow.names]
        if self.row_groups:
            table = file.read_row_groups(list(self.row_groups), columns=wanted)
        else:  # a file without rows
            table = file.schema_arrow.empty_table().select(wanted)
        text = pd.StringDtype("pyarrow", na_value=np.nan)
        mapping = {pa.string(): text, pa.large_string(): text}
        # self_destruct frees each Arrow column once converted: one copy in memory.
        return table.to_pandas(types_mapper=mapping.get, self_destruct=True, split_blocks=True)


def parquet_parts(source: object) -> list[ParquetPart] | None:
    """Input partitions of a local Parquet file or directory; None for other sources."""
    import pyarrow.parquet as pq

    if not isinstance(source, (str, Path)) or "://" in str(source):
        return None
    path = Path(source)
    if not path.exists() or str(path).lower().endswith((".csv", ".csv.gz")):
        return None
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        return None
    parts = []
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        run: list[int] = []
        size = 0
        for group in range(metadata.num_row_groups):
            nbytes = metadata.row_group(group).total_byte_size
            if run and size + nbytes > ROW_GROUP_BYTES:
                parts.append(ParquetPart(str(file), tuple(run)))
                run, size = [], 0
            run.append(group)
            size += nbytes
        parts.append(ParquetPart(str(file), tuple(run)))  # an empty file: zero rows
    return parts
