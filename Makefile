PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-namespace bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The example class graded end to end: homeworks, exam import, final grades, reports.
demo: $(STAMP)
	$(BIN)/autograder demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every grading test with student code in the namespace sandbox (make test jails hw1's only).
test-namespace: $(STAMP)
	AUTOGRADER_TEST_SANDBOX=namespace $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/hw1_grading.py
	$(BIN)/python bench/hw2_timing.py --reruns 3
	$(BIN)/python bench/batch.py

clean:
	rm -rf $(VENV)
