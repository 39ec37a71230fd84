"""The audit's composition root: every dependency can be handed in, the rest comes from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

from kit.auth import Role, TokenStore, bearer_dependency
from services.audit.adapters.local import ParquetRecords, SettingsFiles
from services.audit.adapters.query_log import QueryLog, read_query_log
from services.audit.adapters.replayer import replay_bundle
from services.audit.app import AuditQueries
from services.audit.config import Settings
from services.audit.core.replayed import ReplayResult
from services.audit.core.timeline import Timeline
from services.audit.main import Deps, build_app, build_queries
from services.rules.published.model import TrialConfig
from tests.unit.audit.bundles import write_bundle


@dataclass
class CountingReplayer:
    """A replayer that answers with an empty replay and remembers what it was asked."""

    asked: list[Path] = field(default_factory=list)

    def __call__(
        self,
        bundle: Path,
        *,
        as_of: datetime | None,
        config: TrialConfig | Timeline,
        workers: int | None = None,
        checkpoints: Path | None = None,
    ) -> ReplayResult:
        del config, workers, checkpoints
        self.asked.append(bundle)
        return ReplayResult(as_of, "v1", (), 0, None, (), ())


def test_the_routes_answer_with_the_queries_handed_in(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    write_bundle(root / "b1", [])
    store = TokenStore(tmp_path / "tokens.json")
    _, auditor = store.create("inspector-1", Role.auditor)
    replayer = CountingReplayer()
    deps = Deps(
        require=bearer_dependency(store, Role.auditor),
        query_log=QueryLog(tmp_path / "queries.jsonl"),
        queries=AuditQueries(replayer, ParquetRecords(), SettingsFiles()),
    )

    app = build_app(Settings(bundles=root), deps)
    with TestClient(app) as client:
        answer = client.get(
            "/v1/audit/bundles/b1/replay", headers={"Authorization": f"Bearer {auditor}"}
        )

    assert answer.status_code == 200
    assert answer.json()["config_version"] == "v1"
    assert replayer.asked == [root / "b1"]
    assert [entry["path"] for entry in read_query_log(tmp_path / "queries.jsonl")] == [
        "/v1/audit/bundles/b1/replay"
    ]


def test_the_query_log_defaults_to_the_bundles_directory(tmp_path: Path) -> None:
    assert Settings(bundles=tmp_path).query_log_path == tmp_path / "audit_queries.jsonl"
    assert Settings(bundles=tmp_path, query_log=tmp_path / "q.jsonl").query_log_path == (
        tmp_path / "q.jsonl"
    )


def test_the_default_queries_replay_bundles_on_this_disk() -> None:
    assert build_queries().replayer is replay_bundle
    given = AuditQueries(CountingReplayer(), ParquetRecords(), SettingsFiles())
    assert build_queries(Deps(queries=given)) is given
