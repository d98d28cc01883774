"""The sandbox the grading tests run their workers in.

AUTOGRADER_TEST_SANDBOX picks it (process, namespace, docker) for every
grading test: `make test-namespace` runs the whole suite in the jail. By
default, hw1's grading and the release tests use the namespace sandbox where
this host allows it (so the suite proves that grading works with student code
isolated) and hw2's use the process sandbox, to keep `make test` within its
time budget; the process sandbox stands in wherever namespaces are refused.
"""

from __future__ import annotations

import os

import pytest

from autograder.sandboxes import SANDBOXES, get_sandbox

CHOSEN = os.environ.get("AUTOGRADER_TEST_SANDBOX")
# make test-docker sets it to docker: a test that needs that sandbox then fails where it would skip.
REQUIRED = os.environ.get("AUTOGRADER_REQUIRE_SANDBOX")
JAIL = "namespace" if SANDBOXES["namespace"]().unavailable() is None else "process"


def sandbox(default: str = JAIL):
    return get_sandbox(CHOSEN or default)


def require(name: str):
    """The sandbox called name, or a skip that prints why it cannot run here."""
    sandbox = SANDBOXES[name]()
    reason = sandbox.unavailable()
    if reason and name == REQUIRED:
        pytest.fail(f"the {name} sandbox is required here (AUTOGRADER_REQUIRE_SANDBOX) but cannot run: {reason}")
    if reason:
        pytest.skip(f"the {name} sandbox cannot run here: {reason}")
    return sandbox
