#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (apt packages
# and the Python extras, into ./.venv) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in slapd ldap-utils curl lftp openssl python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q '.[test]'
.venv/bin/ruff check ftps7 tests twisted
.venv/bin/mypy
# Run from a copy-free location so the tests import the installed package.
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
