#!/usr/bin/env bash
# Make sure the file $2 exists; if not, install Debian's package $1 with apt-get (as root, or
# through sudo), so that `make test` needs no hand on a fresh Debian machine.
set -euo pipefail
package="$1"
path="$2"
if [ -e "$path" ]; then
  exit 0
fi
fail() {
  echo "$path is missing and Debian's $package package could not be installed: $1." >&2
  echo "Install it by hand (as root: apt-get update && apt-get install -y $package), then rerun." >&2
  exit 1
}
if ! command -v apt-get >/dev/null; then
  fail "apt-get was not found (not a Debian machine?)"
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "this is not root and sudo was not found"
  as_root=(sudo)
fi
echo "$path is missing: installing Debian's $package package" >&2
"${as_root[@]}" apt-get update -qq || fail "apt-get update failed"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" \
  || fail "apt-get install failed"
[ -e "$path" ] || fail "the package installed, but not $path"
