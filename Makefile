PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test fuzz bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/crossentropy train --data digits

test: $(STAMP)
	$(BIN)/python -m pytest

# The fuzz suite at its full budget (about 10^5 cases; tests/fuzz/fuzzkit.py); `make test` runs a few hundred.
fuzz: $(STAMP)
	CROSSENTROPY_FUZZ_BUDGET=100000 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider

bench: $(STAMP)
	cd benchmarks && ../$(BIN)/python bench_core.py && ../$(BIN)/python bench_learn.py && ../$(BIN)/python bench_linear.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info
