PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv kernel demo test test-fallback fuzz bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

# The optional compiled kernel (pip install -e builds it too; this rebuilds it after an edit of _fused.c). Where
# it cannot be compiled the library runs its NumPy fallback.
kernel: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

demo: $(STAMP)
	$(BIN)/crossentropy train --data digits

test: kernel
	$(BIN)/python -m pytest

# The whole suite once more with the compiled kernel switched off.
test-fallback: $(STAMP)
	CROSSENTROPY_KERNEL=numpy $(BIN)/python -m pytest

# The fuzz suite at its full budget (about 10^5 cases; tests/fuzz/fuzzkit.py); `make test` runs a few hundred.
fuzz: $(STAMP)
	CROSSENTROPY_FUZZ_BUDGET=100000 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider

bench: kernel
	cd benchmarks && ../$(BIN)/python bench_core.py && ../$(BIN)/python bench_learn.py && ../$(BIN)/python bench_linear.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/crossentropy/core/*.so
