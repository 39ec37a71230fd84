"""Verified replay checkpoints (shell: files): a fold's state at a log position, reusable.

A full replay folds every fact from the first; on a long log that is minutes of rules work
(about 100 µs a fact), and an auditor asks many "as of" questions of the same log. A
checkpoint keeps what the fold had built at a log position `seq` — every participant's
projection, the open SAE-02 clocks, the participant views and the signals so far — so a
later replay starts there and folds only what follows.

Why it can be trusted, and when it is not used:
- it is bound to the log by the chain hash at `seq`: that hash commits to every entry up to
  `seq`, so a checkpoint is only used when the log's own entry `seq` has that hash (a log
  changed anywhere before `seq` has another, and the checkpoint is ignored);
- it is bound to the code that built it (the sha256 of the rules engine's, the schemas' and
  the replay fold's source files: a checkpoint of other code is never read) and to the trial
  configurations the fold ran up to its position (the configuration timeline's prefix: a
  replay with other configurations, or a history that switched earlier, does not use it);
- the file carries the sha256 of its body (stored zstd-compressed), checked on every
  read; a file that fails any check is passed over for an older one;
- it is only taken at a position every entry before which the replay folded (never inside
  an as-of cut), so it serves any later replay whose bound reaches it.

Checkpoints live in a directory the auditor names (`--checkpoints`), never in the bundle,
and `--no-checkpoints`-style callers simply pass none: the result is the same either way
(tests/unit/audit/test_checkpoint.py replays both ways and compares the bytes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from services.audit._fold import FoldState, ParticipantView
from services.audit.configs import Activation

FORMAT: Final = "safetymon-replay-checkpoint"
FORMAT_VERSION: Final = 2  # 2: a line per signal and state (1 nested them in one JSON)
#: Take a checkpoint every this many log positions (and at the end of a complete replay).
EVERY: Final = 100_000
_SUFFIX: Final = ".ckpt"


@dataclass(frozen=True, slots=True)
class Resumed:
    """A checkpoint a replay started from: its position and the chain hash it is bound to."""

    seq: int
    chain_hash: str
    fold: FoldState


@dataclass(frozen=True, slots=True)
class Store:
    """The checkpoints of one (code, partition) in a directory; see `code_fingerprint`."""

    root: Path
    fingerprint: str
    partition: tuple[int, int]

    @property
    def directory(self) -> Path:
        """Where this store's files are: one folder per fingerprint and partition."""
        index, count = self.partition
        return self.root / self.fingerprint[:24] / f"{index}-of-{count}"

    def save(self, seq: int, chain_hash: str, fold: FoldState, *, configs: str) -> Path:
        """Write the fold's state at `seq` (atomically: a crash leaves no half file).

        `configs`: `configs_fingerprint` of the configurations the fold ran up to `seq`.
        """
        body = _encode(fold)
        header = {
            **self._identity(seq, chain_hash, configs),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_bytes": len(body),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{seq:012d}-{chain_hash[:16]}{_SUFFIX}"
        # A unique temporary name: replays in threads of one server share a process id.
        with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".tmp", delete=False) as handle:
            handle.write(json.dumps(header, sort_keys=True).encode("utf-8") + b"\n")
            # zstd (pyarrow's, already a dependency): a 1M-event partition's 104 MB body
            # becomes 17 MB in 0.13 s, where zlib level 1 took 0.56 s for 24 MB.
            handle.write(pa.compress(body, codec="zstd", asbytes=True))
        Path(handle.name).replace(target)
        return target

    def _identity(self, seq: int, chain_hash: str, configs: str) -> dict[str, Any]:
        """What a checkpoint's header must say to serve a replay (and what a save writes)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "seq": seq,
            "chain_hash": chain_hash,
            "fingerprint": self.fingerprint,
            "configs": configs,
            "partition": list(self.partition),
            "compression": "zstd",
        }

    def candidates(self, *, below: int | None, last: int | None) -> list[tuple[int, Path]]:
        """Files at positions a replay may start from, newest first.

        `below`: the first position the replay leaves out (as-of cut), if any; `last`: the
        log's last position (a checkpoint past it belongs to some other log).
        """
        if not self.directory.is_dir():
            return []
        found: list[tuple[int, Path]] = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                seq = int(path.name.split("-", 1)[0])
            except ValueError:
                continue
            if (below is None or seq < below) and (last is None or seq <= last):
                found.append((seq, path))
        return sorted(found, reverse=True)

    def load(self, path: Path, *, seq: int, chain_hash: str, configs: str) -> FoldState | None:
        """The fold kept in `path`, or None unless it is of this log, code and configurations."""
        expected = self._identity(seq, chain_hash, configs)
        try:
            with path.open("rb") as handle:
                header = json.loads(handle.readline())
                # Another log's, code's or configuration's: passed over before reading it.
                if not isinstance(header, dict) or any(
                    header.get(k) != v for k, v in expected.items()
                ):
                    return None
                packed = handle.read()
            size = int(header["body_bytes"])
            body = pa.decompress(packed, decompressed_size=size, codec="zstd", asbytes=True)
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
            return None
        if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
            return None
        try:
            return _decode(body)
        except (KeyError, TypeError, ValueError):
            return None


def code_fingerprint() -> str:
    """sha256 of the code a fold runs (rules engine, schemas, the replay's fold)."""
    return _code_digest()


def configs_fingerprint(activations: Sequence[Activation]) -> str:
    """sha256 of the configurations a fold ran with up to some position, and where each began.

    The first applies from the start whatever position its row names, so a history whose
    first row is at seq 1 and one configuration given for the whole log agree.
    """
    plain = [
        [0 if index == 0 else a.from_seq, _plain(a.config)] for index, a in enumerate(activations)
    ]
    # Not repr(): a set's order follows the per-process string hash seed.
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    """`value` as JSON-ready data in one order whatever the process (sets sorted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: _plain(getattr(value, f.name)) for f in fields}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(item) for item in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


#: The code a fold's result depends on: the rules engine, the fact and signal schemas, and the
#: replay's own reading and folding of the log (not its rendering or its command line).
_CODE: Final = (
    ("services.rules.core", "**/*.py"),
    ("schemas", "**/*.py"),
    ("services.audit", "_fold.py"),
    ("services.audit", "_engine.py"),
    ("services.audit", "history.py"),
    ("services.audit", "checkpoint.py"),
)


@lru_cache(maxsize=1)
def _code_digest() -> str:
    digest = hashlib.sha256()
    for package, pattern in _CODE:
        root = Path(str(resources.files(package)))
        for path in sorted(root.glob(pattern)):
            name = f"{package}/{path.relative_to(root).as_posix()}"
            digest.update(name.encode("utf-8") + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _encode(fold: FoldState) -> bytes:
    """The body: one line of counts, clocks and views, then a line per signal and per state.

    Signals and states are JSON already; a line each keeps them as they are instead of
    escaping every quote of ~100 MB of JSON inside another JSON document (which made a save
    and a load cost about twice as much). Keys are JSON arrays, so a tab cannot occur in
    them, and JSON text holds no raw newline or tab.
    """
    meta = {
        "open_clocks": sorted([list(key) for key in fold.open_clocks]),
        "facts": fold.facts,
        "ticks": fold.ticks,
        "last_seq": fold.last_seq,
        "views": [_encode_view(v) for _, v in sorted(fold.views.items())],
    }
    lines = [f"M\t{_compact(meta)}"]
    lines.extend(
        f"S\t{_compact([seq, key[0], key[1], position])}\t{body}"
        for seq, key, position, body in fold.signals
    )
    lines.extend(
        f"P\t{_compact(list(key))}\t{text}" for key, text in sorted(fold.encoded().items())
    )
    return "\n".join(lines).encode("utf-8")


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _encode_view(view: ParticipantView) -> list[Any]:
    return [
        view.trial_id,
        view.participant_id,
        view.site_id,
        view.arm,
        view.status,
        view.facts,
        view.signals,
        _iso(view.first_recorded_at),
        _iso(view.last_recorded_at),
    ]


def _decode(body: bytes) -> FoldState:
    """Read `_encode`'s lines back; states stay JSON until a fact needs them."""
    lines = body.decode("utf-8").split("\n")
    tag, meta_text = lines[0].split("\t", 1)
    if tag != "M":
        raise ValueError("a checkpoint body starts with its counts")
    meta = json.loads(meta_text)
    signals: list[tuple[int, tuple[str, str], int, str]] = []
    stored: dict[tuple[str, str], str] = {}
    for line in lines[1:]:
        tag, key_text, text = line.split("\t", 2)
        key = json.loads(key_text)
        if tag == "S":
            seq, trial, participant, position = key
            signals.append((seq, (trial, participant), position, text))
        elif tag == "P":
            stored[(key[0], key[1])] = text
        else:
            raise ValueError(f"unknown checkpoint line {tag!r}")
    views = (_decode_view(item) for item in meta["views"])
    return FoldState(
        stored=stored,
        open_clocks={(t, p) for t, p in meta["open_clocks"]},
        facts=int(meta["facts"]),
        ticks=int(meta["ticks"]),
        last_seq=meta["last_seq"],
        views={(v.trial_id, v.participant_id): v for v in views},
        signals=signals,
    )


def _decode_view(item: Iterable[Any]) -> ParticipantView:
    trial, participant, site, arm, status, facts, signals, first, last = item
    return ParticipantView(
        trial, participant, site, arm, status, facts, signals, _dt(first), _dt(last)
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
