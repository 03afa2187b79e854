#!/usr/bin/env bash
# Build and install a ROS 2 interface package offline with the rosidl wheels of a venv.
# Usage: tools/build_interfaces.sh SOURCE_DIR BUILD_DIR VENV_PREFIX [extra cmake args...]
# Installs into the venv prefix: the wheels' bootstrapper puts <venv>/lib on the library path,
# so the generated libraries and Python modules need no further environment.
set -euo pipefail
src=$1; build=$2; prefix=$3; shift 3
jobs=${JOBS:-2}
mkdir -p "$build"
export AMENT_PREFIX_PATH="$prefix" CMAKE_PREFIX_PATH="$prefix"
if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_PREFIX_PATH="$prefix" \
    -DPython3_EXECUTABLE="$prefix/bin/python" "$@" > "$build/configure.log" 2>&1; then
  cat "$build/configure.log"; exit 1
fi
if ! cmake --build "$build" -j "$jobs" > "$build/build.log" 2>&1; then
  tail -60 "$build/build.log"; exit 1
fi
cmake --install "$build" > "$build/install.log"
