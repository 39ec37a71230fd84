"""No credential is in the repository: what git tracks, or would add, holds no secret."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Files that hold live secrets; each belongs in a data directory or a secret store.
SECRET_FILES = re.compile(r"(^|/)(tokens\.json|ack\.secret|\.env|[^/]+\.(creds|nk|pem|key))$")
SECRET_TEXT = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "safetymon token": re.compile(r"\bsmt_[A-Za-z0-9_-]{40,}"),
    "nkey seed": re.compile(r"\bSU[A-Z2-7]{56}\b"),
    "secret in an environment assignment": re.compile(
        r"SAFETYMON_(SMTP_PASSWORD|NATS_PASSWORD|NATS_TOKEN|BOOTSTRAP_TOKEN|ACK_SECRET|TOKEN)"
        r"\s*[:=]\s*[\"']?[A-Za-z0-9_\-]{8,}"
    ),
}


def _files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def test_the_repository_lists_files_to_search() -> None:
    assert "kit/auth.py" in _files()


def test_no_secret_file_is_tracked() -> None:
    assert [name for name in _files() if SECRET_FILES.search(name)] == []


@pytest.mark.parametrize("kind", sorted(SECRET_TEXT))
def test_no_secret_text_is_tracked(kind: str) -> None:
    pattern = SECRET_TEXT[kind]
    found = []
    for name in _files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (Parquet fixtures and the like)
        found.extend(f"{name}:{m.group(0)[:40]}" for m in pattern.finditer(text))

    assert found == []
