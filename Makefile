PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-min bench lint clean

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

bench: $(STAMP)
	cd benchmarks && ../$(BIN)/python bench_core.py && ../$(BIN)/python bench_learn.py && ../$(BIN)/python bench_linear.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(VENV_MIN) build dist src/*.egg-info
