"""The lock files pin, with hashes, every dependency pyproject.toml declares (offline check).

`make` installs the virtual environment from requirements-dev.lock with `--require-hashes`,
so a dependency added to pyproject.toml without `make lock` would be missing from it; this
test names what to regenerate before that shows up as an ImportError somewhere else.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: frozenset[str]


def parse_lock(text: str) -> dict[str, Pin]:
    """Pins by canonical name, from pip-compile's `name==version \\ --hash=...` entries."""
    entries: dict[str, Pin] = {}
    # Backslash continuations join a pin with its hash lines into one logical line.
    for line in text.replace("\\\n", " ").splitlines():
        match = _PIN.match(line)
        if match:
            hashes = frozenset(h["digest"] for h in _HASH.finditer(line))
            entries[canonicalize_name(match["name"])] = Pin(Version(match["version"]), hashes)
    return entries


def unpinned(requirements: list[Requirement], pins: dict[str, Pin]) -> list[str]:
    """Each requirement the pins leave out or pin at a version outside its specifier."""
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # not for this platform or Python, so not in a lock made here
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement}: not in the lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement}: the lock pins {pin.version}")
    return problems


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _runtime_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    build = _pyproject()["build-system"]
    assert isinstance(project, dict)
    assert isinstance(build, dict)
    # The build backend is locked too: make installs the project without build isolation.
    return [Requirement(text) for text in [*project["dependencies"], *build["requires"]]]


def _extra_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return [Requirement(text) for texts in extras.values() for text in texts]


@pytest.fixture(scope="module")
def runtime_pins() -> dict[str, Pin]:
    return parse_lock(RUNTIME_LOCK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_pins() -> dict[str, Pin]:
    return parse_lock(DEV_LOCK.read_text(encoding="utf-8"))


def test_the_runtime_lock_pins_every_runtime_dependency(runtime_pins: dict[str, Pin]) -> None:
    assert unpinned(_runtime_requirements(), runtime_pins) == [], "run `make lock`"


def test_the_dev_lock_pins_every_dependency_and_every_extra(dev_pins: dict[str, Pin]) -> None:
    requirements = _runtime_requirements() + _extra_requirements()

    assert unpinned(requirements, dev_pins) == [], "run `make lock`"


def test_both_locks_pin_the_same_version_of_a_shared_package(
    runtime_pins: dict[str, Pin], dev_pins: dict[str, Pin]
) -> None:
    """The dev lock is made under the runtime lock's pins: tests run what deployments run."""
    differ = {
        name: (pin.version, dev_pins[name].version if name in dev_pins else None)
        for name, pin in runtime_pins.items()
        if name not in dev_pins or dev_pins[name].version != pin.version
    }

    assert differ == {}


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_every_pin_carries_a_hash(lock: Path) -> None:
    """`pip install --require-hashes` refuses a pin without one; say which, here."""
    pins = parse_lock(lock.read_text(encoding="utf-8"))

    assert pins
    assert sorted(name for name, pin in pins.items() if not pin.hashes) == []


def test_unpinned_names_a_missing_package_and_a_version_outside_the_range() -> None:
    """The check can fail: one package absent, one pinned below its declared minimum."""
    lock = (
        "duckdb==2.0.1 \\\n    --hash=sha256:" + "a" * 64 + "\n"
        "    # via safetymon (pyproject.toml)\n"
        "Jinja2==3.0.0 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    )
    requirements = [Requirement(r) for r in ("duckdb==2.0.1", "jinja2>=3.1", "scipy>=1.13")]

    problems = unpinned(requirements, parse_lock(lock))

    assert problems == ["jinja2>=3.1: the lock pins 3.0.0", "scipy>=1.13: not in the lock"]


def test_a_requirement_for_another_platform_needs_no_pin() -> None:
    requirement = Requirement('pywin32>=306; sys_platform == "win32"')

    assert unpinned([requirement], {}) == []
