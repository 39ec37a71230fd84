"""SQL and Arrow plumbing of the rules DuckDB store (adapters layer, private helpers)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any, Final

import duckdb
import pyarrow as pa

from schemas import GENESIS_HASH, SignalUpdated, chain_hash
from services.rules.core.engine import Signal
from services.rules.core.errors import AlreadyProcessedError
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import encode_state
from services.rules.ports import (
    Commit,
    ConfigActivation,
    ConfigIdentity,
    ConfigRecord,
    DeadLetter,
    Folded,
)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS tracking (
    consumer VARCHAR NOT NULL,
    event_id UUID NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS participant_state (
    trial_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    state JSON NOT NULL,
    PRIMARY KEY (trial_id, participant_id)
);
-- How far each participant has been folded (stream seq of its last fact or tick): facts of
-- different participants are folded out of log order, so a tick applies to a participant
-- only past this position, and a configuration switch starts past the highest one.
CREATE TABLE IF NOT EXISTS participant_position (
    trial_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (trial_id, participant_id)
);
-- Inputs folded into a participant since its snapshot in participant_state: the state is the
-- snapshot folded with these (in `ord` order), so a commit writes what is new and a snapshot
-- is rewritten only every so often (its cost grows with the history, the journal's does not).
CREATE TABLE IF NOT EXISTS participant_journal (
    ord BIGINT NOT NULL PRIMARY KEY,
    trial_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    tick BOOLEAN NOT NULL,
    body BLOB NOT NULL
);
-- Whether the participant's current state has an open SAE-02 or SUSAR-01 clock (the
-- snapshot may lag).
CREATE TABLE IF NOT EXISTS participant_clock (
    trial_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    open BOOLEAN NOT NULL,
    PRIMARY KEY (trial_id, participant_id)
);
CREATE TABLE IF NOT EXISTS signal_outbox (
    signal_id UUID PRIMARY KEY,
    seq BIGINT NOT NULL,
    subject VARCHAR NOT NULL,
    body BLOB NOT NULL,
    published_at TIMESTAMPTZ
);
-- The signals' hash chain (see `chain_signals`); added to existing files, whose older rows
-- keep NULL: they were written before the chain and `audit verify` reports them as such.
ALTER TABLE signal_outbox ADD COLUMN IF NOT EXISTS prev_hash VARCHAR;
ALTER TABLE signal_outbox ADD COLUMN IF NOT EXISTS hash VARCHAR;
CREATE TABLE IF NOT EXISTS dead_letters (
    dead_letter_id UUID PRIMARY KEY,
    seq BIGINT NOT NULL,
    consumer VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    error VARCHAR NOT NULL,
    event_id UUID,
    trial_id VARCHAR,
    participant_id VARCHAR,
    subject VARCHAR,
    stream_seq BIGINT,
    body BLOB,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Each trial configuration the service switched to, from the log position of the first fact
-- evaluated under it, so an as-of replay applies the configuration that was live.
CREATE TABLE IF NOT EXISTS config_history (
    from_seq BIGINT NOT NULL PRIMARY KEY,
    config_version VARCHAR NOT NULL,
    config_sha256 VARCHAR NOT NULL,
    config_toml VARCHAR NOT NULL,
    rule_versions VARCHAR NOT NULL, -- JSON object: rule id -> version the file chose
    activated_at TIMESTAMPTZ NOT NULL
);
"""
CONFIG_COLUMNS: Final = (
    "from_seq, config_version, config_sha256, config_toml, rule_versions, activated_at"
)
DEAD_LETTER_COLUMNS: Final = (
    "dead_letter_id, consumer, stage, error, event_id, trial_id, participant_id, subject,"
    " stream_seq, body"
)
_names = itertools.count()


def max_seqs(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Return the highest outbox and dead-letter sequence numbers (0 when empty)."""
    # fetchall, not fetchone: DuckDB 2.0 refuses new work while a result is half-read.
    ((outbox, dead),) = con.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM signal_outbox),"
        " (SELECT coalesce(max(seq), 0) FROM dead_letters)"
    ).fetchall()
    return int(outbox), int(dead)


def last_signal_hash(con: duckdb.DuckDBPyConnection) -> str:
    """The hash of the highest-seq outbox row: where the next signal chains on.

    The genesis hash when the outbox is empty or its last row predates the chain (NULL):
    the chain then starts at the next row, and verify reports the rows before as older.
    """
    rows = con.execute("SELECT hash FROM signal_outbox ORDER BY seq DESC LIMIT 1").fetchall()
    return str(rows[0][0]) if rows and rows[0][0] else GENESIS_HASH


def signal_content(seq: int, body: bytes) -> bytes:
    """The bytes an outbox row hashes: its seq in decimal ASCII, a colon, its body.

    The body is hashed as stored, not re-canonicalised: it is the exact bytes the relay
    published (pydantic's compact `model_dump_json`), so an auditor hashes what was sent
    without a JSON round trip that could disagree on numbers or key order. The seq is part
    of it because the outbox's seq is the chain position (ingest's seq is outside its hash,
    but ingest's content repeats its event id; here a renumbered row must not verify).
    The colon cannot be part of a decimal seq, so the split is unambiguous.
    """
    return f"{seq}:".encode("ascii") + body


def chain_signals(prev_hash: str, first_seq: int, bodies: Sequence[bytes]) -> list[tuple[str, str]]:
    """`(prev_hash, hash)` of each body at seq first_seq, first_seq + 1, ... (pure).

    `hash = chain_hash(prev_hash, signal_content(seq, body))`: ingest's convention
    (sha256 of the previous hex hash then the hashed bytes; genesis 64 zeros).
    """
    links = []
    for seq, body in enumerate(bodies, start=first_seq):
        digest = chain_hash(prev_hash, signal_content(seq, body))
        links.append((prev_hash, digest))
        prev_hash = digest
    return links


def with_table(
    con: duckdb.DuckDBPyConnection,
    table: Any,  # noqa: ANN401 - pyarrow ships no type information
    sql: str,
    params: list[Any],
) -> list[Any]:
    """Run `sql` with `{ids}` bound to a registered Arrow table, then unregister it."""
    name = f"_in_{next(_names)}"
    con.register(name, table)
    try:
        return con.execute(sql.format(ids=name), params).fetchall()
    finally:
        con.unregister(name)


def write(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, Any],
    activation: ConfigActivation | None = None,
) -> None:
    """Body of the batch transaction; a tracking clash aborts it before anything is written.

    Empty tables are neither registered nor written: each statement costs a few milliseconds
    whatever its size, and most groups change only some of the tables.
    """
    present = {key: table for key, table in tables.items() if table.num_rows}
    names = {key: f"_{key}_{next(_names)}" for key in present}
    for key, table in present.items():
        con.register(names[key], table)
    try:
        if "tracking" in names:
            ((clashes,),) = con.execute(
                f"SELECT count(*) FROM tracking t JOIN {names['tracking']} n"
                " ON t.consumer = n.consumer AND t.event_id = CAST(n.event_id AS UUID)"
            ).fetchall()
            if clashes:
                msg = f"{clashes} input(s) of this batch were processed already"
                raise AlreadyProcessedError(msg)
        if activation is not None:
            _refuse_second_config(con, activation.from_seq)
        for key, sql in _WRITES:
            if key in names:
                con.execute(sql.format(table=names[key]))
        if activation is not None:
            con.execute(
                f"INSERT INTO config_history ({CONFIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, now())",
                config_row(activation),
            )
    finally:
        for name in names.values():
            con.unregister(name)


#: What each of a batch's tables writes, in order (`{table}`: the registered Arrow table).
_WRITES: Final = (
    ("tracking", "INSERT INTO tracking SELECT consumer, CAST(event_id AS UUID) FROM {table}"),
    (
        "states",
        "INSERT INTO participant_state SELECT trial_id, participant_id, state FROM {table}"
        " ON CONFLICT (trial_id, participant_id) DO UPDATE SET state = excluded.state",
    ),
    (
        "states",  # a snapshot replaces the journal it folded in
        "DELETE FROM participant_journal WHERE (trial_id, participant_id) IN"
        " (SELECT trial_id, participant_id FROM {table})",
    ),
    ("journal", "INSERT INTO participant_journal SELECT * FROM {table}"),
    (
        "clocks",
        "INSERT INTO participant_clock SELECT trial_id, participant_id, open FROM {table}"
        " ON CONFLICT (trial_id, participant_id) DO UPDATE SET open = excluded.open",
    ),
    (
        "positions",
        "INSERT INTO participant_position SELECT trial_id, participant_id, seq FROM {table}"
        " ON CONFLICT (trial_id, participant_id) DO UPDATE SET seq = greatest(seq, excluded.seq)",
    ),
    (
        "outbox",
        "INSERT INTO signal_outbox (signal_id, seq, subject, body, prev_hash, hash)"
        " SELECT CAST(signal_id AS UUID), seq, subject, body, prev_hash, hash"
        " FROM {table} ON CONFLICT DO NOTHING",
    ),
    (
        "dead",
        f"INSERT INTO dead_letters (seq, {DEAD_LETTER_COLUMNS}) SELECT seq,"
        " CAST(dead_letter_id AS UUID), consumer, stage, error, CAST(event_id AS UUID),"
        " trial_id, participant_id, subject, stream_seq, body FROM {table}"
        " ON CONFLICT DO NOTHING",
    ),
)


def _refuse_second_config(con: duckdb.DuckDBPyConnection, from_seq: int) -> None:
    # Checked before writing, like tracking: one configuration per position, and a key
    # violation mid-transaction would leave it aborted (even unregistering then fails).
    ((taken,),) = con.execute(
        "SELECT count(*) FROM config_history WHERE from_seq = ?", [from_seq]
    ).fetchall()
    if taken:
        raise AlreadyProcessedError(f"a configuration is recorded from seq {from_seq} already")


def config_row(activation: ConfigActivation) -> list[Any]:
    """The config_history values of an activation, `activated_at` left to the database."""
    config = activation.config
    versions = json.dumps(dict(config.rule_versions), sort_keys=True, separators=(",", ":"))
    return [activation.from_seq, config.version, config.sha256, config.toml, versions]


def read_config_history(con: duckdb.DuckDBPyConnection) -> list[ConfigRecord]:
    """Every recorded activation, by `from_seq`."""
    rows = con.execute(f"SELECT {CONFIG_COLUMNS} FROM config_history ORDER BY from_seq").fetchall()
    return [
        ConfigRecord(
            ConfigActivation(
                from_seq=row[0],
                config=ConfigIdentity(
                    version=row[1],
                    sha256=row[2],
                    toml=row[3],
                    rule_versions=tuple(sorted(json.loads(row[4]).items())),
                ),
            ),
            activated_at=row[5],
        )
        for row in rows
    ]


_STR = pa.string()
_SCHEMAS: Final = {
    "tracking": pa.schema([("consumer", _STR), ("event_id", _STR)]),
    "states": pa.schema([("trial_id", _STR), ("participant_id", _STR), ("state", _STR)]),
    "positions": pa.schema([("trial_id", _STR), ("participant_id", _STR), ("seq", pa.int64())]),
    "journal": pa.schema(
        [
            ("ord", pa.int64()),
            ("trial_id", _STR),
            ("participant_id", _STR),
            ("seq", pa.int64()),
            ("tick", pa.bool_()),
            ("body", pa.binary()),
        ]
    ),
    "clocks": pa.schema([("trial_id", _STR), ("participant_id", _STR), ("open", pa.bool_())]),
    "outbox": pa.schema(
        [
            ("signal_id", _STR),
            ("seq", pa.int64()),
            ("subject", _STR),
            ("body", pa.binary()),
            ("prev_hash", _STR),
            ("hash", _STR),
        ]
    ),
    "dead": pa.schema(
        [
            ("seq", pa.int64()),
            ("dead_letter_id", _STR),
            ("consumer", _STR),
            ("stage", _STR),
            ("error", _STR),
            ("event_id", _STR),
            ("trial_id", _STR),
            ("participant_id", _STR),
            ("subject", _STR),
            ("stream_seq", pa.int64()),
            ("body", pa.binary()),
        ]
    ),
}


def batch_tables(  # noqa: PLR0913 - what one transaction writes, keyword-only
    batch: Commit,
    signals: Sequence[Signal],
    *,
    subjects: tuple[str, str],
    outbox_seq: int,
    dead_seq: int,
    signal_head: str = GENESIS_HASH,
    snapshots: Sequence[ParticipantState] | None = None,
    journal: Sequence[tuple[int, Folded]] = (),
) -> dict[str, Any]:
    """Arrow tables, one per target table, holding everything the batch writes.

    `subjects` are those of raised and of updated (retracted) signals. `snapshots` are the
    states written whole (None: all of the batch's states); `journal` the inputs appended,
    each with its `ord`. `signal_head` is the hash of the outbox row at `outbox_seq`, which
    the signals chain on, in outbox seq order.
    """
    letters = batch.dead_letters
    bodies = [s.model_dump_json().encode() for s in signals]
    links = chain_signals(signal_head, outbox_seq + 1, bodies)
    whole = batch.states if snapshots is None else snapshots
    columns: dict[str, dict[str, list[Any]]] = {
        "tracking": {
            "consumer": [batch.consumer] * len(batch.tracking),
            "event_id": [str(i) for i in batch.tracking],
        },
        "states": {
            "trial_id": [s.trial_id for s in whole],
            "participant_id": [s.participant_id for s in whole],
            "state": [encode_state(s) for s in whole],
        },
        "journal": {
            "ord": [ord_ for ord_, _ in journal],
            "trial_id": [f.key[0] for _, f in journal],
            "participant_id": [f.key[1] for _, f in journal],
            "seq": [f.seq for _, f in journal],
            "tick": [f.tick for _, f in journal],
            "body": [f.body for _, f in journal],
        },
        "clocks": {
            "trial_id": [s.trial_id for s in batch.states],
            "participant_id": [s.participant_id for s in batch.states],
            "open": [s.has_open_clock for s in batch.states],
        },
        "positions": {
            "trial_id": [key[0] for key, _ in batch.positions],
            "participant_id": [key[1] for key, _ in batch.positions],
            "seq": [seq for _, seq in batch.positions],
        },
        "outbox": {
            "signal_id": [str(s.event_id) for s in signals],
            "seq": list(range(outbox_seq + 1, outbox_seq + 1 + len(signals))),
            "subject": [subjects[isinstance(s, SignalUpdated)] for s in signals],
            "body": bodies,
            "prev_hash": [prev for prev, _ in links],
            "hash": [digest for _, digest in links],
        },
        "dead": {
            "seq": list(range(dead_seq + 1, dead_seq + 1 + len(letters))),
            **{
                name: [_text(getattr(letter, name)) for letter in letters]
                for name in _SCHEMAS["dead"].names
                if name not in {"seq", "stream_seq", "body"}
            },
            "stream_seq": [letter.stream_seq for letter in letters],
            "body": [letter.body for letter in letters],
        },
    }
    return {key: pa.table(columns[key], schema=schema) for key, schema in _SCHEMAS.items()}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def row_to_dead_letter(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=row[0],
        consumer=row[1],
        stage=row[2],
        error=row[3],
        event_id=row[4],
        trial_id=row[5],
        participant_id=row[6],
        subject=row[7],
        stream_seq=row[8],
        body=None if row[9] is None else bytes(row[9]),
    )
