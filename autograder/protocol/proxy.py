"""Grader-side stand-ins for objects living in the worker.

`session.student.activations.Sigmoid()` imports activations.py in the worker,
looks up Sigmoid and instantiates it there; the grader holds a Remote handle.
Attribute reads come back as plain data (tensors arrive as fresh tensors) or as
further handles; calls send their arguments as data or handles.
"""

from __future__ import annotations

import torch

from autograder.protocol import plan, wire


class Remote:
    __slots__ = ("_session", "_ref", "_path", "_callables")

    def __init__(self, session, ref: wire.Ref, path: str):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_callables", {})

    def __getattr__(self, name: str):
        if name.startswith("__"):  # keep Python's and libraries' protocol probes local
            raise AttributeError(name)
        if name in self._callables:
            return self._callables[name]
        if name in self._ref.methods:
            self._callables[name] = RemoteMethod(self, name)
            return self._callables[name]
        path = f"{self._path}.{name}"
        value = self._session.request("get", ref=self._ref.id, name=name, describe=path)
        if isinstance(value, Remote) and value._ref.kind in ("callable", "class", "module"):
            self._callables[name] = value  # functions and classes don't change between calls; data may
        return value

    def __setattr__(self, name: str, value) -> None:
        self._callables.pop(name, None)
        self._session.request("set", ref=self._ref.id, name=name, args=[value], describe=f"setting {self._path}.{name}")

    def __call__(self, *args, **kwargs):
        value = self._session.call(self, None, args, kwargs)
        if isinstance(value, Remote):
            path = describe_call(self._path, args, kwargs, shapes=False, scalars=self._session.show_scalars)
            object.__setattr__(value, "_path", path)
        return value

    def __repr__(self) -> str:
        return f"<student {self._ref.kind} {self._path} ({self._ref.type})>"


class RemoteMethod:
    """`obj.forward` of a student object: calling it is one round trip."""

    __slots__ = ("owner", "name")

    def __init__(self, owner: Remote, name: str):
        self.owner, self.name = owner, name

    def __call__(self, *args, **kwargs):
        return self.owner._session.call(self.owner, self.name, args, kwargs)

    def __repr__(self) -> str:
        return f"<student method {self.owner._path}.{self.name}>"


class StudentModules:
    """The submission's files as modules: `student.neurons` imports neurons.py in the worker."""

    def __init__(self, session):
        self._session = session
        self._modules: dict[str, Remote] = {}

    def __getattr__(self, name: str) -> Remote:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._modules:
            module = self._session.request("import", module=name, describe=f"import {name}")
            if not isinstance(module, Remote):
                raise wire.ProtocolError(f"import {name} returned {module!r:.80}")
            object.__setattr__(module, "_path", name)
            self._modules[name] = module
        return self._modules[name]

    def carried_to(self, session) -> "StudentModules":
        """These modules, and the functions and classes looked up in them, for the next check of the
        same process (the worker keeps their handles across `begin`): no import or lookup again."""
        carried = StudentModules(session)
        carried._modules = dict(self._modules)
        waiting, seen = list(self._modules.values()), set()
        while waiting:  # every handle looked up from them, however deep (a class's own functions too)
            remote = waiting.pop()
            if isinstance(remote, Remote) and id(remote) not in seen:
                seen.add(id(remote))
                object.__setattr__(remote, "_session", session)
                waiting += remote._callables.values()
        return carried


def describe_call(path: str, args, kwargs, shapes: bool = True, scalars: bool = True) -> str:
    parts = [describe_value(a, shapes, scalars) for a in args]
    parts += [f"{k}={describe_value(v, shapes, scalars)}" for k, v in kwargs.items()]
    return f"{path}({', '.join(parts)})"


def describe_value(value, shapes: bool = True, scalars: bool = True) -> str:
    """Short description for messages: tensors by dtype and shape; scalars by value when
    `scalars` (public checks), else by type, since a hidden check's scalars are inputs too."""
    if isinstance(value, plan.Input):  # a call being recorded (plan.Calls) is described as it will be made
        value = value.example
    if isinstance(value, torch.Tensor):
        if not shapes:
            return "..."
        device = "" if value.device.type == "cpu" else f" on {value.device}"
        return f"{wire.DTYPE_NAMES.get(value.dtype, str(value.dtype))}{list(value.shape)}{device}"
    if isinstance(value, Remote):
        return value._path
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe_value(v, shapes, scalars) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    text = repr(value)
    return text if scalars and len(text) <= 24 else type(value).__name__
