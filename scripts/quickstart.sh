#!/usr/bin/env bash
# Install ftps7 into ./.venv and start it in the background on the example
# configuration etc/ftps7.config (explicit FTPS on 127.0.0.1:2121, implicit on
# 127.0.0.1:9990). Creates the account "demo" (password printed below) and the
# example's self-signed certificate on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q .
export FTPS7_CONFIG="$PWD/etc/ftps7.config"
.venv/bin/ftps7 config check >/dev/null
if ! .venv/bin/ftps7 user list | grep -q '^demo\b'; then
  printf 'demo-password\n' | .venv/bin/ftps7 user add demo --groups ftpusers --password-stdin
fi
if [ -f etc/ftps7.pid ] && kill -0 "$(cat etc/ftps7.pid)" 2>/dev/null; then
  kill "$(cat etc/ftps7.pid)"; while kill -0 "$(cat etc/ftps7.pid 2>/dev/null)" 2>/dev/null; do sleep 0.1; done
fi
.venv/bin/twistd --pidfile etc/ftps7.pid --logfile etc/ftps7.log ftps7 --config "$FTPS7_CONFIG"
for _ in $(seq 100); do grep -q 'ftps7 ready' etc/ftps7.log 2>/dev/null && break; sleep 0.1; done
grep -q 'ftps7 ready' etc/ftps7.log || { tail -n 30 etc/ftps7.log; exit 1; }
.venv/bin/ftps7 cert list
cat <<TXT

ftps7 is running (pid $(cat etc/ftps7.pid), log etc/ftps7.log).
Try it:
  curl --ssl-reqd -k -u demo:demo-password ftp://127.0.0.1:2121/
  curl -k -u demo:demo-password ftps://127.0.0.1:9990/README.txt
Stop it:  kill \$(cat etc/ftps7.pid)
TXT
