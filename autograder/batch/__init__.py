"""Grading a class: finding its submissions, grading them in parallel into the gradebook."""
