"""An assignment as the engine sees it: its checks, the forbidden APIs of each
unit, and where expected values come from (the reference, or a recorded bundle)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checks.registry import AUTOGRAD_APIS, GUARD_APIS, CheckList, CheckSpec
from autograder.checks.seeds import course_secret
from autograder.checks.tape import ReferenceProxy, ReplayTape, Tape
from autograder.protocol.guard import operators_for

PUBLIC_CHECKS = "public_checks.py"
HIDDEN_CHECKS = "hidden_checks.py"
BUNDLE_DIR = "public_checks"
BUNDLE_CODE = "checks.py"
BUNDLE_MANIFEST = "manifest.json"
NOTEBOOK_TEMPLATE = "notebook.py"  # the students' notebook, in the percent format (release/notebook.py)
PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]  # the course repository, where the package runs from one


class AssignmentError(Exception):
    """The assignment's material is missing or broken: grading cannot run."""


@dataclass
class Assignment:
    name: str
    checks: list[CheckSpec]
    forbidden: dict[str, list[str]]  # unit -> forbidden qualified names
    modules: list[str]  # the student's files (stems), in check order
    reference_dir: Path | None = None  # None when replaying a bundle
    recordings: dict[str, list] = field(default_factory=dict)  # check id -> tape entries (bundle)
    signatures: dict[str, dict] = field(default_factory=dict)  # file stem -> unit -> signature (bundle; see submission/signatures.py)
    secret: bytes | None = None  # keys hidden checks' inputs (checks/seeds.py); None when replaying a bundle
    # Units that train a model (checks/quality.py): any torch API, autograd included (ASSIGNMENTS.md, hw3 rules).
    model_quality: frozenset = frozenset()
    _reference: object = None

    @property
    def max_score(self) -> float:
        return sum(spec.points for spec in self.checks)

    def forbidden_for(self, unit: str) -> list[str]:
        """What unit ("activations.Sigmoid") must not use: its own forbidden APIs, autograd (every unit but
        those that train a model) and the guard's parts (every unit)."""
        autograd = [] if unit in self.model_quality else AUTOGRAD_APIS
        return self.forbidden.get(unit, []) + autograd + GUARD_APIS

    def forbidden_in_source(self, unit: str) -> list[str]:
        """forbidden_for(unit) and the `torch.ops.aten` spellings of what it computes, for the static scan
        (at run time the guard sees those operators at the dispatcher, whatever spelled them)."""
        names = self.forbidden_for(unit)
        return names + [f"torch.ops.aten.{operator}" for operator in sorted(operators_for(names))]

    def tape_for(self, check_id: str) -> Tape:
        return ReplayTape(self.recordings[check_id]) if self.reference_dir is None else Tape()

    def reference_root(self, tape: Tape) -> ReferenceProxy:
        if self.reference_dir is not None and self._reference is None:
            package = _package_for(self.name, self.reference_dir)
            namespace = types.SimpleNamespace()
            for stem in self.modules:
                setattr(namespace, stem, _import(f"{package}.{stem}", self.reference_dir / f"{stem}.py"))
            self._reference = namespace
        return ReferenceProxy(self._reference, "", tape)


def load_reference(name: str, reference_dir: Path) -> Assignment:
    """The full assignment, public and hidden checks, graded against the reference."""
    if not (reference_dir / PUBLIC_CHECKS).is_file():
        raise AssignmentError(f"{reference_dir / PUBLIC_CHECKS} not found: is {name!r} an assignment of this course?")
    package = _package_for(name, reference_dir)
    public = _import(f"{package}.public_checks", reference_dir / PUBLIC_CHECKS)
    specs = _specs(public)
    if (reference_dir / HIDDEN_CHECKS).is_file():
        specs += _specs(_import(f"{package}.hidden_checks", reference_dir / HIDDEN_CHECKS))
    assignment = _assemble(name, specs, public, reference_dir=reference_dir)
    assignment.secret = course_secret(reference_dir.parent)
    return assignment


def load_bundle(name: str, bundle_dir: Path) -> Assignment:
    """The public checks only, replayed from a released bundle (no reference needed)."""
    manifest_path, code_path = bundle_dir / BUNDLE_MANIFEST, bundle_dir / BUNDLE_CODE
    if not (manifest_path.is_file() and code_path.is_file()):
        raise AssignmentError(
            f"no public check bundle in {bundle_dir} (expected {BUNDLE_MANIFEST} and {BUNDLE_CODE}); "
            f"copy the whole assignments/{name} folder, including {BUNDLE_DIR}/"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("assignment") != name:
        raise AssignmentError(f"{bundle_dir} holds the public checks of {manifest.get('assignment')!r}, not of {name!r}: "
                              f"the homework known here is {manifest.get('assignment')!r}")
    module = _import(f"_autograder_bundle_{name}", code_path)
    specs = [spec for spec in _specs(module) if spec.id in manifest["recordings"]]
    assignment = _assemble(name, specs, module, reference_dir=None)
    assignment.recordings = manifest["recordings"]
    assignment.signatures = manifest.get("signatures", {})  # absent from bundles released before submit checked them
    return assignment


def released_homeworks(course: Path) -> list[str]:
    """The homeworks released in course/assignments: those with a public check bundle."""
    return sorted(path.parent.parent.name for path in course.glob(f"assignments/*/{BUNDLE_DIR}/{BUNDLE_MANIFEST}"))


def reference_homeworks(course: Path) -> list[str]:
    """The homeworks of course/reference: those with public checks."""
    return sorted(path.parent.name for path in course.glob(f"reference/*/{PUBLIC_CHECKS}"))


def find_bundle(name: str, directory: Path, origins: list[Path] | None = None, explicit: Path | None = None) -> Path:
    """Where homework name's public check bundle is, as `check`, `submit` and the notebook's check cell look:
    explicit (the bundle, or the homework folder holding it); directory's own public_checks/; else, going up
    from each origin in turn (default: directory, the working directory, the package's checkout), a copy of
    the homework (its public_checks/) or a course with assignments/<name>/public_checks/. AssignmentError
    says where else to look."""
    if explicit is not None:
        for candidate in (explicit, explicit / BUNDLE_DIR):
            if (candidate / BUNDLE_MANIFEST).is_file():
                return candidate
        raise AssignmentError(f"{explicit} holds no public check bundle ({BUNDLE_DIR}/{BUNDLE_MANIFEST}): pass the "
                              f"{BUNDLE_DIR} folder of the released {name}, or the {name} folder holding it")
    if (directory / BUNDLE_DIR).is_dir():
        return directory / BUNDLE_DIR  # load_bundle says so when it holds another homework's checks
    course = None  # the first course found on the way, with the homeworks it released
    for origin in origins if origins is not None else [directory, Path.cwd(), PACKAGE_CHECKOUT]:
        for folder in (origin.resolve(), *origin.resolve().parents):
            if _bundle_name(folder / BUNDLE_DIR) == name:
                return folder / BUNDLE_DIR
            if (folder / "assignments" / name / BUNDLE_DIR).is_dir():
                return folder / "assignments" / name / BUNDLE_DIR
            if course is None and (released := released_homeworks(folder)):
                course = folder, released
    if course:
        raise AssignmentError(f"{name!r} is not a released homework of {course[0]}: the homeworks there are "
                              f"{', '.join(course[1])}")
    raise AssignmentError(f"cannot find the public checks of {name} here or above: they come with the homework, in its "
                          f"folder's {BUNDLE_DIR}/ (assignments/{name}/{BUNDLE_DIR}/ in the course repository). Run this "
                          f"inside your copy of the {name} folder, with your files or notebook in it, or pass "
                          f"--checks <that folder>/{BUNDLE_DIR}")


def _bundle_name(bundle_dir: Path) -> str | None:
    try:
        return json.loads((bundle_dir / BUNDLE_MANIFEST).read_text()).get("assignment")
    except (OSError, ValueError, AttributeError):
        return None


def _assemble(name, specs, checks_module, reference_dir) -> Assignment:
    """The assignment of these checks; checks_module's FORBIDDEN and MODEL_QUALITY say what units may use."""
    order = {}
    for spec in specs:  # group by file, then by unit, in order of first appearance
        order.setdefault(spec.module, {}).setdefault(spec.unit, len(order.get(spec.module, {})))
    modules = list(order)
    ranked = sorted(specs, key=lambda s: (modules.index(s.module), order[s.module][s.unit]))
    forbidden, model_quality = getattr(checks_module, "FORBIDDEN", {}), getattr(checks_module, "MODEL_QUALITY", ())
    return Assignment(name, ranked, dict(forbidden), modules, reference_dir, model_quality=frozenset(model_quality))


def _specs(module) -> list[CheckSpec]:
    return [spec for value in vars(module).values() if isinstance(value, CheckList) for spec in value.specs]


def _package_for(name: str, directory: Path) -> str:
    """A private package over the reference folder, so its files can import each other relatively."""
    package = f"_autograder_reference_{name}_{hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:8]}"
    if package not in sys.modules:
        module = types.ModuleType(package)
        module.__path__ = [str(directory)]
        sys.modules[package] = module
    return package


def _import(qualified: str, path: Path):
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[qualified]
        raise
    return module
