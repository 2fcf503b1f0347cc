PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv kernel demo test test-fallback test-min fuzz bench lint clean

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

# pytest-xdist: one worker per core; the gloo tests run their process group once for all workers. Each worker keeps
# to one BLAS / OpenMP thread: with two each, two workers oversubscribed the 2-core machine and the NumPy MLP tests
# ran 10-16x slower (the whole suite 3 min 21 s against 2 min 10 s).
XDIST := -n auto --dist loadgroup
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

test: kernel
	$(ONE_THREAD) $(BIN)/python -m pytest $(XDIST)

# The whole suite once more with the compiled kernel switched off.
test-fallback: $(STAMP)
	CROSSENTROPY_KERNEL=numpy $(ONE_THREAD) $(BIN)/python -m pytest $(XDIST)

# The fuzz suite at its full budget (about 10^5 cases; tests/fuzz/fuzzkit.py); `make test` runs a few hundred.
fuzz: $(STAMP)
	CROSSENTROPY_FUZZ_BUDGET=100000 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider

# The declared dependency floors (pyproject.toml), in their own venv, on a smoke subset of the tests.
VENV_MIN := .venv-min
SMOKE := tests/learn/test_table.py tests/learn/test_persist.py tests/learn/test_evaluate.py tests/test_cli_workflow.py \
         tests/core/test_information.py src/crossentropy/learn

test-min:
	test -x $(VENV_MIN)/bin/python || $(PY) -m venv $(VENV_MIN)
	$(PY) .ci/min_constraints.py > $(VENV_MIN)/constraints.txt
	$(VENV_MIN)/bin/python -m pip install -q -c $(VENV_MIN)/constraints.txt -e '.[learn,torch]' pytest hypothesis scipy
	$(VENV_MIN)/bin/python -m pip list 2>/dev/null | grep -i -E '^(numpy|scikit-learn|scipy|pandas|matplotlib|rich|pyarrow|torch|pytest|hypothesis) '
	$(VENV_MIN)/bin/python -m pytest -p no:cacheprovider $(SMOKE)

bench: kernel
	cd benchmarks && ../$(BIN)/python bench_core.py && ../$(BIN)/python bench_overhead.py && ../$(BIN)/python bench_tagger.py \
		&& ../$(BIN)/python bench_learn.py \
		&& ../$(BIN)/python bench_text.py && ../$(BIN)/python bench_linear.py && ../$(BIN)/python bench_hf.py \
		&& ../$(BIN)/python bench_gpu.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(VENV_MIN) build dist src/*.egg-info src/crossentropy/kernels/*.so
