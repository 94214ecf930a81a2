#!/usr/bin/env bash
# Create or refresh the repo's .venv (idempotent; re-installs only when pyproject.toml changed),
# and install the Debian Fashion-MNIST package where apt-get is available as root.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
want=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ -x .venv/bin/python ]; then
  have=$(.venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null || echo none)
  [ "$have" = "$want" ] || { echo "setup: .venv is stale (python $have, want $want): recreating"; rm -rf .venv; }
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=".venv/.darc-installed-$(sha1sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing the Python stack into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.darc-installed-*
  touch "$stamp"
fi
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian package dataset-fashion-mnist"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
