#!/usr/bin/env bash
# Bootstrap edge on a fresh machine (a .venv with requirements.txt), then hand the arguments to invoke:
#   ./edge.sh demo | ./edge.sh test | ./edge.sh twin.up | ./edge.sh --list
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "edge.sh: edge needs Python 3.10 or newer as '$python' (set PYTHON=/path/to/python3)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "edge.sh: creating .venv"
  "$python" -m venv .venv
fi
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  echo "edge.sh: installing requirements.txt into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  # edge itself, editable, so `dvc repro` stages can run `python -m edge.training` from any folder
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$want" > .venv/.requirements.sha256
fi
# Debian packages: Fashion-MNIST for `invoke data.seed`; Chromium for the browser tests (`test` only)
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
[ "${1:-}" != test ] || [ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "edge.sh: installing Debian's ${missing[*]}"
  { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || echo "edge.sh: could not install ${missing[*]} (data.seed then downloads Fashion-MNIST; browser tests need chromium)" >&2
fi
exec .venv/bin/invoke "$@"
