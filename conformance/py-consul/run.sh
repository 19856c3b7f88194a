#!/usr/bin/env bash
# Runs py-consul's own test suite (tests/ of the py-consul sdist from PyPI, MIT) against
# `consul-streams dev` from a project checkout. Only the harness is adapted:
# harness_conftest.py replaces the sdist's root conftest.py, so each fixture starts one fresh
# `consul-streams dev -dev -client 127.0.0.1 -http-port <free> -log-level trace -config-file
# <py-consul's JSON config>` instead of a `hashicorp/consul` Docker container; na.txt lists
# the tests a single dev agent cannot pass (skipped, counted as not applicable). Test files
# are unchanged. Needs python3 and pip access to PyPI (first run only).
#
# usage: conformance/py-consul/run.sh [PROJECT_CHECKOUT] [pytest args...]   (default: .)
# env:   PYCONSUL_WORK     cache dir (default ${TMPDIR:-/tmp}/conformance-pyconsul)
#        PYCONSUL_VERSION  py-consul release (default 1.8.0, the one na.txt was written for)
#        PYCONSUL_TIMEOUT  seconds for the pytest run (default 900)
# Last line: 'py-consul suite: P/N applicable (M not applicable)'. Exit 0 only if P == N.
set -u
here=$(dirname "$(readlink -f "$0")")
proj=$(readlink -f "${1:-$(pwd)}"); shift || true
work=${PYCONSUL_WORK:-${TMPDIR:-/tmp}/conformance-pyconsul}
ver=${PYCONSUL_VERSION:-1.8.0}
fail() { echo "$1"; echo "py-consul suite: 0/0 applicable (0 not applicable)"; exit 1; }
[ -f "$proj/pyproject.toml" ] || fail "no pyproject.toml in $proj"
mkdir -p "$work"

# 1. One venv: the project (editable) plus what py-consul's tests import.
key=$( (sha256sum "$proj/pyproject.toml" | cut -d' ' -f1; echo "$proj") | sha256sum | cut -c1-16)
venv=$work/venv-$key
if [ ! -f "$venv/.ok" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || fail "python3 -m venv failed"
  timeout 600 "$venv/bin/pip" install -q -e "$proj" requests aiohttp packaging pytest \
    pytest-asyncio pytest-timeout > "$work/pip-$key.log" 2>&1 \
    || fail "pip install failed (see $work/pip-$key.log)"
  touch "$venv/.ok"
fi

# 2. py-consul's sdist from PyPI (it ships tests/ and the root conftest.py).
sdist=$work/py_consul-$ver.tar.gz
if [ ! -f "$sdist" ]; then
  (cd "$work" && timeout 300 "$venv/bin/pip" download -q --no-deps --no-binary :all: \
    "py-consul==$ver" > "$work/download.log" 2>&1) || fail "pip download failed (see $work/download.log)"
fi

# 3. Fresh unpack, then the harness adaptation.
src=$work/py_consul-$ver
rm -rf "$src"
tar xzf "$sdist" -C "$work" || fail "cannot unpack $sdist"
cp "$here/harness_conftest.py" "$src/conftest.py"

# 4. Run (the sdist's pyproject adds coverage options; they are dropped).
cd "$src" || fail "no $src"
PATH="$venv/bin:$PATH" CONSUL_STREAMS_BIN="$venv/bin/consul-streams" PYCONSUL_NA="$here/na.txt" \
  timeout -k 10 "${PYCONSUL_TIMEOUT:-900}" "$venv/bin/python" -m pytest -o addopts= \
  -p no:cacheprovider -q -rfE --timeout 60 "${@:-tests}" > "$work/pytest.log" 2>&1
rc=$?
[ $rc -eq 124 ] && echo "pytest run stopped after ${PYCONSUL_TIMEOUT:-900}s"
grep -E '^(FAILED|ERROR) ' "$work/pytest.log"
echo "(full pytest output: $work/pytest.log)"
line=$(grep -E '^py-consul suite: ' "$work/pytest.log" | tail -1)
[ -n "$line" ] || fail "no summary (see $work/pytest.log)"
echo "$line"
p=$(echo "$line" | sed -E 's/^py-consul suite: ([0-9]+)\/([0-9]+).*/\1/')
n=$(echo "$line" | sed -E 's/^py-consul suite: ([0-9]+)\/([0-9]+).*/\2/')
[ "$p" = "$n" ]
