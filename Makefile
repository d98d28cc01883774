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

SUMMARY := $(BIN)/python -c "import json, sys; r = json.load(sys.stdin); print(r['assignment'], r['score'], '/', r['max_score'], 'points;', len(r['checks']), 'checks')"

demo: $(STAMP)
	@echo "== the reference solution of hw1: every check passes =="
	$(BIN)/autograder grade hw1 reference/hw1 --student demo
	@echo "== the reference solution of hw2, timed checks included (CUDA twins skip without a GPU) =="
	$(BIN)/autograder grade hw2 reference/hw2 --student demo
	@echo "== the released stubs: 0 points, every check fails cleanly =="
	$(BIN)/autograder grade hw1 assignments/hw1 --student demo --format json | $(SUMMARY)
	$(BIN)/autograder grade hw2 assignments/hw2 --student demo --format json | $(SUMMARY)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every grading test with student code in the namespace sandbox (make test jails hw1's only).
test-namespace: $(STAMP)
	AUTOGRADER_TEST_SANDBOX=namespace $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/hw1_grading.py
	$(BIN)/python bench/hw2_timing.py --reruns 3

clean:
	rm -rf $(VENV)
