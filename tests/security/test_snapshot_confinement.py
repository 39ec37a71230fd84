"""A snapshot request can only make a service write inside its own data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.snapshots import SnapshotRequestError, requested_directory


def _ask(directory: Path | str, data_dir: Path) -> Path:
    body = json.dumps({"directory": str(directory)}).encode()
    return requested_directory(
        body, default_root=data_dir / "exports", files=("x.parquet",), owner="rules"
    )


@pytest.mark.parametrize(
    "where",
    [
        "/tmp/world-readable",  # noqa: S108 - the attack: a directory others can read
        "{data}/../elsewhere",
        "{data}/exports/../../elsewhere",
        "{parent}",
    ],
)
def test_a_directory_outside_the_data_dir_is_refused(tmp_path: Path, where: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    with pytest.raises(SnapshotRequestError, match="inside rules's data directory"):
        _ask(where.format(data=data_dir, parent=tmp_path), data_dir)


def test_a_symlink_out_of_the_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "out").symlink_to(tmp_path)

    with pytest.raises(SnapshotRequestError):
        _ask(data_dir / "out", data_dir)


def test_a_directory_inside_the_data_dir_is_accepted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    inside = data_dir / "exports" / "bundle-1"

    assert _ask(inside, data_dir) == inside
    assert _ask(data_dir, data_dir) == data_dir
