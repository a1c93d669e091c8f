# The two set-up commands of the README:
#   make demo   install (CPU) + export the bundled Sudoku model to ONNX + solve the bundled examples
#   make test   install everything (CPU) + run the whole test suite
# Both create ./.venv on first use; re-running skips what is already installed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch==2.13.0 is pinned so pip takes the CPU wheel (a bare `torch` pulls a multi-GB CUDA build).
TORCH  ?= torch==2.13.0

.PHONY: demo test test-extended install-demo install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[export,ort]"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[export,ort,trt-check,dev,serve]"
	touch $@

install-demo: $(VENV)/.demo-installed
install-test: $(VENV)/.test-installed

demo: install-demo
	$(BIN)/hrm-demo

test: install-test
	$(BIN)/python -m pytest -q

# The minutes-long checks CI leaves out (marked `extended`).
test-extended: install-test
	$(BIN)/python -m pytest -q -m extended

clean:
	rm -rf $(VENV) .pytest_cache
