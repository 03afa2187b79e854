#!/usr/bin/env bash
# Checks what `make venv` needs from the host, and says how to get what is missing.
set -u
python=${1:-python3}
fail() { echo "make venv: $*" >&2; exit 1; }
command -v "$python" >/dev/null || fail "$python not found (Python 3.11 is required)"
ver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$ver" = "3.11" ] || fail "Python 3.11 is required (the ROS 2 wheels are cp311); $python is $ver. Use make PYTHON=python3.11"
"$python" -c 'import ensurepip, venv' 2>/dev/null \
  || fail "$python cannot create virtual environments: install python3.11-venv (Debian: apt-get install python3-venv)"
inc=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$inc/Python.h" ] || fail "Python headers missing ($inc/Python.h): install python3-dev"
command -v cmake >/dev/null || fail "cmake not found (apt-get install cmake)"
command -v gcc >/dev/null || fail "gcc not found (apt-get install gcc g++)"
command -v g++ >/dev/null || fail "g++ not found (apt-get install g++)"
exit 0
