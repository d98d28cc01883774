"""The sandbox the grading tests run their workers in.

AUTOGRADER_TEST_SANDBOX picks it (process, namespace, docker); by default the
namespace sandbox where this host allows it, so the suite proves that grading
works with student code isolated, and the process sandbox elsewhere.
"""

from __future__ import annotations

import os

import pytest

from autograder.sandboxes import SANDBOXES, get_sandbox

CHOSEN = os.environ.get("AUTOGRADER_TEST_SANDBOX") or ("namespace" if SANDBOXES["namespace"].unavailable() is None else "process")


def sandbox():
    return get_sandbox(CHOSEN)


def require(name: str):
    """The sandbox called name, or a skip that prints why it cannot run here."""
    reason = SANDBOXES[name].unavailable()
    if reason:
        pytest.skip(f"the {name} sandbox cannot run here: {reason}")
    return get_sandbox(name)
