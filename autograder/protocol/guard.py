"""Run-time guard against forbidden torch APIs, inside the worker process.

Runs in the sandbox next to the student's code, so it imports only the
standard library and torch. `Guard.install()` swaps each forbidden callable
for a wrapper that refuses calls coming straight from a file in the
student's directory and lets every other caller (torch itself, the worker)
through. Install it once per process, before the student's module is
imported, so that `from torch import sigmoid` picks up the wrapper.
"""

import functools
import importlib
import inspect
import os
import sys
import types


class ForbiddenAPIError(RuntimeError):
    """The student's code called an API its unit must implement itself."""


class Guard:
    def __init__(self, names: list[str], student_dir: str):
        self.names = list(names)
        self.violations: list[str] = []  # e.g. "torch.sigmoid called at activations.py:12 in forward"
        self._student_prefix = os.path.join(os.path.realpath(student_dir), "")
        self._student_file_cache: dict[str, bool] = {}
        self._student_class_cache: dict[type, bool] = {}
        self._wrapped: set[tuple[int, str]] = set()  # (id(owner), attribute) already guarded

    def install(self) -> None:
        """Guard every name that resolves in this torch; skip the others."""
        for name in self.names:
            owner, attribute, target = _resolve(name)
            if target is None:
                continue
            if isinstance(target, types.ModuleType):
                self._guard_module(target)
            elif inspect.isclass(target):
                self._guard_class(name, target)
            elif callable(target):
                self._guard_attribute(name, owner, attribute)

    def _guard_module(self, module: types.ModuleType) -> None:
        """Guard the module's public functions, and the classes defined in it.

        A function is replaced in this module's namespace only, so guarding
        re-exports is harmless. A class is changed everywhere, so classes
        only re-exported here (torch.nn.functional's Tensor) are left alone.
        """
        public = getattr(module, "__all__", None)
        if public is None:
            public = [name for name in vars(module) if not name.startswith("_")]
        for attribute in public:
            target = getattr(module, attribute, None)
            qualified = f"{module.__name__}.{attribute}"
            if inspect.isclass(target):
                if (target.__module__ + ".").startswith(module.__name__ + "."):
                    self._guard_class(qualified, target)
            elif inspect.isroutine(target):
                self._guard_attribute(qualified, module, attribute)

    def _guard_class(self, api: str, cls: type) -> None:
        """Wrap __init__: catches construction, and subclasses defined by the student."""
        if (id(cls), "__init__") in self._wrapped:
            return
        original = cls.__init__
        is_object_init = original is object.__init__

        @functools.wraps(original)
        def guarded_init(instance, *args, **kwargs):
            caller = sys._getframe(1)
            if self._is_student_file(caller.f_code.co_filename):
                self._refuse(api, "called at", _location(caller))
            subclass = type(instance)
            if subclass is not cls and self._is_student_class(subclass):
                self._refuse(api, "subclassed by", f"class {subclass.__module__}.{subclass.__qualname__}")
            if is_object_init:
                # object.__init__ rejects arguments once __init__ is
                # overridden; the arguments were meant for __new__.
                return original(instance)
            return original(instance, *args, **kwargs)

        try:
            cls.__init__ = guarded_init
        except TypeError:
            return  # a built-in type: its attributes cannot be replaced
        self._wrapped.add((id(cls), "__init__"))

    def _guard_attribute(self, api: str, owner, attribute: str) -> None:
        """Replace owner.attribute (a module function or a class method) with a guarded wrapper."""
        if (id(owner), attribute) in self._wrapped:
            return
        # The raw attribute, so that static and class methods stay what they are.
        raw = inspect.getattr_static(owner, attribute)
        descriptor = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
        original = raw.__func__ if descriptor else getattr(owner, attribute)

        @functools.wraps(original)
        def guarded(*args, **kwargs):
            caller = sys._getframe(1)
            if self._is_student_file(caller.f_code.co_filename):
                self._refuse(api, "called at", _location(caller))
            return original(*args, **kwargs)

        try:
            setattr(owner, attribute, descriptor(guarded) if descriptor else guarded)
        except (TypeError, AttributeError):
            return  # a built-in type or a read-only attribute
        self._wrapped.add((id(owner), attribute))

    def _refuse(self, api: str, how: str, location: str) -> None:
        # Recorded before raising: the student's code may catch the error.
        self.violations.append(f"{api} {how} {location}")
        raise ForbiddenAPIError(f"{api} is not allowed here ({location}): implement it with plain tensor operations")

    def _is_student_file(self, filename: str) -> bool:
        known = self._student_file_cache.get(filename)
        if known is None:
            # "<string>", "<frozen ...>": no file to place.
            known = not filename.startswith("<") and os.path.realpath(filename).startswith(self._student_prefix)
            self._student_file_cache[filename] = known
        return known

    def _is_student_class(self, cls: type) -> bool:
        known = self._student_class_cache.get(cls)
        if known is None:
            module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
            # A module loaded without a sys.modules entry still leaves its
            # file in the code of the class's own methods.
            files = [module_file] if module_file else [
                member.__code__.co_filename for member in vars(cls).values() if hasattr(member, "__code__")
            ]
            known = any(self._is_student_file(file) for file in files)
            self._student_class_cache[cls] = known
        return known


def _resolve(name: str) -> tuple[object, str, object]:
    """(owner, last attribute, object) for a dotted name; object None when absent."""
    parts = name.split(".")
    try:
        owner = target = importlib.import_module(parts[0])
    except ImportError:
        return None, "", None
    for depth, part in enumerate(parts[1:], start=2):
        owner = target
        if hasattr(owner, part):
            target = getattr(owner, part)
        elif isinstance(owner, types.ModuleType):
            try:  # a submodule not imported yet
                target = importlib.import_module(".".join(parts[:depth]))
            except ImportError:
                return None, "", None
        else:
            return None, "", None
    return owner, parts[-1], target


def _location(frame) -> str:
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
