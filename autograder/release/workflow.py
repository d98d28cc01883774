"""The GitHub Actions workflow shipped in each released homework
(`.github/workflows/autograde.yml`): on every push to a student's repository
(GitHub Classroom makes one per student from the homework) it installs the
autograder and runs the public checks with `autograder check <hw> . --ci`,
which fails the job when a public check fails, writes a Markdown table to the
job summary, marks failed checks as annotations, and leaves a JUnit file that
the workflow uploads.

`package` is what pip installs after torch's CPU build, as the released README's
Install section says (release/install.py): the course sets it in course.toml
([release] package), e.g. "dl-autograder==0.1.0" or the URL of a wheel attached
to a GitHub release; `release` refuses a placeholder.
"""

from __future__ import annotations

from autograder.release.install import install_commands

WORKFLOW_PATH = ".github/workflows/autograde.yml"
JUNIT_FILE = "autograder-junit.xml"

TEMPLATE = """\
# Runs the public checks of {assignment} on every push: the job fails while a public check fails.
# The checks' table is in the run's summary page; failed checks are marked on the run.
name: autograde {assignment}
on: [push, pull_request, workflow_dispatch]
permissions:
  contents: read
jobs:
  check:
    runs-on: ubuntu-latest
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      # The CPU build of torch: the public checks need no GPU, and it is a far smaller download.
      - run: {torch}
      - run: {package}
      - run: autograder check {assignment} . --ci --junit {junit}
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: autograder-junit
          path: {junit}
"""


def workflow(assignment: str, package: str) -> str:
    """The workflow's text; package is course.toml's [release] package, checked by `release`."""
    torch, package = install_commands(package)
    return TEMPLATE.format(assignment=assignment, torch=torch, package=package, junit=JUNIT_FILE)
