"""How students and instructors install the autograder: the one way every README, workflow and
script we write shows, and what stands in its way.

* The distribution is `dl-autograder`; the package it installs, and the command, are `autograder`.
  An unrelated PyPI project is named `autograder` and installs the same package folder and the same
  command, so the two cannot share an environment: whichever was installed last overwrites the
  other's files, and uninstalling either deletes files of both.
* torch first, its CPU build: PyPI's torch for Linux pulls several GB of CUDA libraries, and the
  public checks need no GPU. Then the course's package (course.toml, [release] package).

Standard library only: `autograder --version` may ask `clashing_distribution`, and must answer at once.
"""

from __future__ import annotations

import re
from importlib import metadata

from autograder import __version__

DISTRIBUTION = "dl-autograder"
SUMMARY = "Grading and homework system for an introductory deep-learning course"  # pyproject.toml's description
UNRELATED = "autograder"  # the PyPI project that installs the same package folder and command
TORCH = "torch==2.13.0"  # as pyproject.toml pins it: a range would pull the newest (CUDA) build
CPU_WHEELS = "https://download.pytorch.org/whl/cpu"
TORCH_INSTALL = f"pip install {TORCH} --index-url {CPU_WHEELS}"
EXAMPLE_PACKAGE = f"{DISTRIBUTION}=={__version__}"

# What a placeholder looks like: "<course>" style blanks, the documentation domains, and the URL
# course.toml shipped with before there was a real one (github.com/dl-course/autograder does not exist).
_PLACEHOLDERS = (re.compile(r"<[A-Za-z][\w .-]*>"), re.compile(r"\bexample\.(org|com|net)\b", re.I),
                 re.compile(r"github\.com/dl-course/autograder\b", re.I))
_NAMED = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[|@|==|>=|<=|~=|!=|<|>|;|$)")  # a requirement, or "name @ url"


class PackageSettingError(Exception):
    pass


def install_commands(package: str) -> list[str]:
    """The commands that install the autograder into an active virtual environment."""
    return [TORCH_INSTALL, f'pip install "{package}"']


def check_package_setting(package: str, where: str = "course.toml") -> str:
    """package (course.toml's [release] package), stripped; PackageSettingError, saying what to put
    there, when it is unset, a placeholder, or a requirement naming another distribution."""
    package = package.strip()
    fix = (f'set it to what students pip install: "{EXAMPLE_PACKAGE}" (from PyPI), the URL of a wheel '
           "(built with `pip wheel --no-deps .`, e.g. attached to a GitHub release), or "
           f'"{DISTRIBUTION} @ git+https://github.com/<your course>/<its repository>@<a tag>"')
    if not package:
        raise PackageSettingError(f"{where}: [release] package is not set: the released README and CI workflow "
                                  f"install the autograder from it; {fix}")
    if any(placeholder.search(package) for placeholder in _PLACEHOLDERS):
        raise PackageSettingError(f"{where}: [release] package is still a placeholder ({package!r}); {fix}")
    named = _NAMED.match(package)
    # A URL or a path names nothing: pip reads the name from what it fetches.
    if named and not package.endswith((".whl", ".tar.gz", ".zip")) and _normalized(named[1]) != DISTRIBUTION:
        raise PackageSettingError(
            f"{where}: [release] package {package!r} names the distribution {named[1]!r}, not {DISTRIBUTION!r}"
            + (" (`autograder` on PyPI is an unrelated project)" if _normalized(named[1]) == UNRELATED else "")
            + f"; {fix}")
    return package


def clashing_distribution() -> str | None:
    """A warning when the unrelated `autograder` distribution is installed in this environment, else None."""
    try:
        other = metadata.distribution(UNRELATED)
    except metadata.PackageNotFoundError:
        return None
    if other.metadata["Summary"] == SUMMARY:
        return None  # this project, installed under its former name (an old editable install)
    return (f"warning: this environment also has {other.metadata['Name']} {other.version}, an unrelated project "
            f"that installs the same `autograder` package and command as {DISTRIBUTION}: one overwrites the other's "
            f'files. Install {DISTRIBUTION} into a virtual environment of its own, or run `pip uninstall {UNRELATED} '
            f'{DISTRIBUTION}` and then install {DISTRIBUTION} again.')


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


VENV = "~/.venvs/dl-course"  # outside the homework's folder: not handed in, not committed, one for every homework

README_SECTION = """\
## Install

Once for the whole course, in a virtual environment of its own (Python 3.11 or newer):

```sh
{commands}
```

The first `pip install` takes the CPU build of torch: the checks need no GPU, and the torch that
PyPI serves for Linux brings several GB of CUDA libraries. In each new terminal, run the
`. {venv}/bin/activate` line again before using `autograder`.

Check that it worked, inside this folder:

```sh
autograder --version
autograder check {assignment}
```

The first prints the autograder's version; the second runs the public checks on your files (on
the files as handed out none passes yet).

`pip install autograder` would install an unrelated project that has the same `autograder` package
folder and command: the two cannot share an environment. If `pip show autograder` names that
project, run `pip uninstall autograder {distribution}`, then the last `pip install` line above again.
"""


def readme_section(assignment: str, package: str) -> str:
    """The released README's "Install" section."""
    commands = [f"python3 -m venv {VENV}", f". {VENV}/bin/activate", *install_commands(package)]
    return README_SECTION.format(commands="\n".join(commands), venv=VENV, assignment=assignment, distribution=DISTRIBUTION)


def with_section(readme: str, section: str) -> str:
    """readme with section inserted after the first heading's own text (before the next heading), so
    the title and what the homework is about come first. Lines in fenced code blocks are not headings."""
    lines, fenced, headings = readme.splitlines(keepends=True), False, []
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            headings.append(number)
    at = headings[1] if len(headings) > 1 else len(lines)
    before = "".join(lines[:at]).rstrip("\n")
    after = "".join(lines[at:])
    return (f"{before}\n\n" if before else "") + f"{section.rstrip()}\n" + (f"\n{after}" if after else "")
