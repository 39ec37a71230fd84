"""Read the facts of a bundle's event log in log order, as of a recorded time (shell: Parquet I/O).

The wire form handed to the rules is rebuilt exactly as ingest published it (canonical
content plus the chain fields, `services.ingest.core.chain.Entry.wire`), so a replay decodes
the same bytes the live rules service decoded, with the same adapter (`LOG_FACT_ADAPTER`:
arriving facts and the log's own `clock_ticked` entries). Rows are read in Arrow batches; only the
columns a replay needs are read, and the as-of filter runs in Arrow, not per row in Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from schemas import LOG_FACT_ADAPTER
from services.audit.core.errors import UndecodableFactError
from services.audit.core.fold import LoggedFact

BATCH_ROWS: Final = 65_536
_COLUMNS: Final = ["seq", "participant_id", "recorded_at", "content", "prev_hash", "hash"]


def wire_bytes(content: str, seq: int, prev_hash: str, digest: str) -> bytes:
    """The message ingest published for a log entry: content with its chain fields appended."""
    tail = f',"seq":{seq},"prev_hash":"{prev_hash}","hash":"{digest}"}}'
    return (content[:-1] + tail).encode("utf-8")


def iter_batches(
    path: Path,
    *,
    as_of: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    after_seq: int | None = None,
    columns: Sequence[str] = _COLUMNS,
) -> Iterator[pa.RecordBatch]:
    """Arrow batches of the log in file (seq) order, keeping rows recorded at or before `as_of`.

    With `after_seq`, only rows past that log position are read: row groups wholly at or
    before it are skipped on their statistics, without reading their content. `columns`
    must hold seq with `after_seq`, and recorded_at with `as_of`.
    """
    source = pq.ParquetFile(path)
    groups = _groups_after(source, after_seq)
    for batch in source.iter_batches(
        batch_size=batch_rows, columns=list(columns), row_groups=groups
    ):
        if after_seq is not None:
            batch = batch.filter(pc.greater(batch.column("seq"), after_seq))  # noqa: PLW2901
        if as_of is not None:
            bound = pa.scalar(as_of, type=batch.schema.field("recorded_at").type)
            batch = batch.filter(pc.less_equal(batch.column("recorded_at"), bound))  # noqa: PLW2901
        if batch.num_rows:
            yield batch


def _groups_after(source: pq.ParquetFile, after_seq: int | None) -> list[int]:
    """Row groups that may hold a seq past `after_seq` (all of them without statistics)."""
    meta = source.metadata
    every = list(range(meta.num_row_groups))
    if after_seq is None:
        return every
    index = source.schema_arrow.get_field_index("seq")
    kept = []
    for group in every:
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max or stats.max > after_seq:
            kept.append(group)
    return kept


def iter_facts(
    path: Path,
    *,
    as_of: datetime | None = None,
    partition: tuple[int, int] | None = None,
    after_seq: int | None = None,
) -> Iterator[LoggedFact]:
    """Decode the log's facts in seq order (recorded at or before `as_of` when given).

    Args:
        path: the bundle's event_log.parquet.
        as_of: recorded-time bound (inclusive); None reads the whole log.
        partition: `(index, count)` keeps only participants whose stable hash falls in
            partition `index` of `count`, so workers can replay disjoint participants.
            Clock ticks (no participant) are kept in every partition: a tick concerns
            every participant, so each worker needs every tick.
        after_seq: read only the entries past this log position (a replay resuming from a
            checkpoint taken there).

    """
    for whole in iter_batches(path, as_of=as_of, after_seq=after_seq):
        batch = whole if partition is None else _in_partition(whole, partition)
        columns: dict[str, list[Any]] = {
            name: batch.column(name).to_pylist() for name in ("seq", "content", "prev_hash", "hash")
        }
        for seq, content, prev, digest in zip(
            columns["seq"], columns["content"], columns["prev_hash"], columns["hash"], strict=True
        ):
            try:
                fact = LOG_FACT_ADAPTER.validate_json(wire_bytes(content, seq, prev, digest))
            except ValidationError as exc:
                # The live rules dead-letter such a fact with a SYS-01 signal; a replay that
                # skipped it silently would differ from the live run, so it stops and says so.
                codes = ", ".join(e["type"] for e in exc.errors(include_url=False)[:3])
                msg = f"log entry seq {seq} does not decode under these schemas ({codes})"
                raise UndecodableFactError(msg) from exc
            yield LoggedFact(seq, fact)


def _in_partition(batch: pa.RecordBatch, partition: tuple[int, int]) -> pa.RecordBatch:
    """The rows of one partition's participants, and every row without one (clock ticks).

    Filtered in Arrow before any content becomes a Python string: each worker reads the
    whole log, and most of it belongs to the other workers.
    """
    index, count = partition
    if count <= 1:
        return batch
    ids = pc.dictionary_encode(batch.column("participant_id"))
    mine = pa.array(
        [participant_partition(p, count) == index for p in ids.dictionary.to_pylist()],
        type=pa.bool_(),
    )
    keep = pc.fill_null(pc.take(mine, ids.indices), True)  # no participant: a tick, kept
    return batch.filter(keep)


def participant_partition(participant_id: str | None, count: int) -> int:
    """A stable partition for a participant (Python's str hash is salted per process)."""
    if count <= 1 or participant_id is None:
        return 0
    total = 0
    for char in participant_id:
        total = (total * 31 + ord(char)) & 0xFFFFFFFF
    return total % count


def last_recorded(path: Path) -> datetime | None:
    """The newest recorded_at in the log (None for an empty log)."""
    table = pq.read_table(path, columns=["recorded_at"])
    if table.num_rows == 0:
        return None
    value = pc.max(table.column("recorded_at")).as_py()
    return value if isinstance(value, datetime) else None


def hash_at(path: Path, seq: int) -> str | None:
    """The chain hash the log holds at `seq` (None when there is no such entry)."""
    for batch in iter_batches(path, after_seq=seq - 1, columns=("seq", "hash")):
        seqs = batch.column("seq")
        hit = pc.index(seqs, seq).as_py()
        if hit >= 0:
            return str(batch.column("hash")[hit].as_py())
        if batch.num_rows and pc.min(seqs).as_py() > seq:
            return None
    return None


def log_extent(path: Path, as_of: datetime | None) -> tuple[int | None, int | None]:
    """(last seq of the log, first seq recorded after `as_of`, or None when none is).

    Every entry before the second is in a replay as of `as_of`: a fold's state at such a
    position is the same whatever the bound, so a checkpoint there serves every replay whose
    bound reaches it.
    """
    table = pq.read_table(path, columns=["seq", "recorded_at"])
    if table.num_rows == 0:
        return None, None
    seqs = table.column("seq")
    last = pc.max(seqs).as_py()
    if as_of is None:
        return last, None
    bound = pa.scalar(as_of, type=table.schema.field("recorded_at").type)
    late = seqs.filter(pc.greater(table.column("recorded_at"), bound))
    return last, (pc.min(late).as_py() if len(late) else None)
