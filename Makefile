PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch's CPU build: the tests need no GPU, and PyPI's torch for Linux pulls several GB of CUDA
# libraries. `make TORCH_INDEX=<url>` takes it from elsewhere (a mirror, a CUDA build). With
# --retries 0, where TORCH_INDEX cannot be reached pip goes on at once with the extra indexes and
# find-links of its own configuration (an offline machine's wheels) instead of retrying each page for
# minutes; TORCH_INDEX replaces a configured index-url.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test test-slow test-quality test-cluster test-namespace test-docker bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --retries 0 torch==2.13.0 --index-url $(TORCH_INDEX)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The example class graded end to end: homeworks, exam import, final grades, reports.
demo: $(STAMP)
	$(BIN)/autograder demo

# Two pytest processes, each test file in one of them (its fixtures graded once): the grader mostly waits
# on its workers, so two keep both cores busy.
# The longest files are named first (pytest collects each file once): a worker handed one of them last would
# run it alone while the other idles (so ordered, the two workers' test times differed by 5 s in 250).
LONGEST_TESTS := tests/test_hw3_grading.py tests/test_batch.py tests/test_hw1_grading.py tests/test_timing.py tests/test_hw2_grading.py tests/test_protocol.py
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not quality and not cluster" -n 2 --dist loadfile $(LONGEST_TESTS) tests

# Tests over 30 s each: a worker started 15 s late, a busy neighbour in a batch, every bundle under perturbation,
# the attack corpus in every sandbox. One at a time: some of them load the machine on purpose.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]  # 5: no test is marked slow

# Model-quality checks: every case of the checks library's, and hw3's text classifier graded on its full data
# (tens of seconds of training each); make test runs one calibration case.
test-quality: $(STAMP)
	$(BIN)/python -m pytest -q -m quality -n 2 --dist loadfile

# batch --cluster on a real Dask scheduler and workers on 127.0.0.1: a class as a local batch grades it, a worker
# killed mid-run, a submission that kills its worker, a scheduler gone. One at a time: each starts its own cluster.
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster

# Every grading test with student code in the namespace sandbox (make test jails hw1's only).
test-namespace: $(STAMP)
	AUTOGRADER_TEST_SANDBOX=namespace $(BIN)/python -m pytest -q -m "not slow"

# The docker sandbox with a real engine and image (.ci/test-docker says what it runs): an engine is installed
# and started where none answers and this is root's host with apt; elsewhere it says why and passes.
test-docker: $(STAMP)
	.ci/test-docker

bench: $(STAMP)
	$(BIN)/python bench/hw1_grading.py
	$(BIN)/python bench/cpu_per_submission.py --rounds 1
	$(BIN)/python bench/hw2_timing.py --reruns 3
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/same_score.py --runs 3
	$(BIN)/python bench/nbgrader_side_by_side.py --students 6 --rounds 1
	$(BIN)/python bench/hw3_classifier.py --seeds 2 --students 1
	$(BIN)/python bench/cluster.py --students 12

clean:
	rm -rf $(VENV)
