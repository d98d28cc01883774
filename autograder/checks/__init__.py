"""The checks library: what an assignment's check files import."""

from autograder.checks.failures import CheckFailed
from autograder.checks.registry import CheckList

__all__ = ["CheckFailed", "CheckList"]
