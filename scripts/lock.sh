#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml with pip-compile ($1): the runtime lock ($2), then
# the dev lock ($3: runtime + every extra: test, lint, lock) under the runtime lock's pins, so
# both name the same version of every package they share. Further arguments (--upgrade) go to
# both runs. pip-compile asks the package sources pip is configured with (pip config list), so
# the hashes are those of the files this machine's pip will be served.
set -euo pipefail
pip_compile="$1"
lock="$2"
dev_lock="$3"
shift 3
export CUSTOM_COMPILE_COMMAND="make lock"
common=(
  --quiet
  --generate-hashes
  --allow-unsafe         # pin pip and setuptools too: they are part of the environment
  --all-build-deps       # and the build backend, for `pip install --no-build-isolation -e .`
  --strip-extras         # a lock used as a constraint file may not carry extras
  --no-emit-index-url    # where packages come from is the machine's pip configuration,
  --no-emit-find-links   # not the lock's
)
"$pip_compile" "${common[@]}" "$@" --output-file "$lock" pyproject.toml
"$pip_compile" "${common[@]}" "$@" --all-extras \
  --constraint "$lock" --output-file "$dev_lock" pyproject.toml
