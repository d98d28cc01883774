"""Static scan of a student's file for forbidden APIs.

Runs in the trusted grader on untrusted source, so it only parses, never
executes. Names are resolved through imports and simple alias assignments
(`F = torch.nn.functional`), scope by scope, without regard to the order of
statements. Method calls on values (`x.sigmoid()`, `layer.backward(g)`) are
left to the run-time guard: their receiver's type is unknown here.

A unit (a top-level function or class) is charged with what its own
definition references, and with what the module-level definitions it uses
by name reference, transitively.
"""

import ast
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from autograder.checks.parsing import parse

# Larger files are not scanned (source is capped before parsing it); the
# run-time guard still applies to them.
MAX_SOURCE_BYTES = 1_000_000


@dataclass(frozen=True)
class Violation:
    unit: str  # the top-level function or class charged with the use
    name: str  # the forbidden qualified name it uses, e.g. "torch.sigmoid"
    line: int

    def __str__(self) -> str:
        return f"line {self.line}: {self.unit} uses {self.name}"


def scan_source(source: str, rules: dict[str, list[str]]) -> dict[str, list[Violation]]:
    """Violations per unit, sorted by line; units without violations are left out.

    `rules` maps a unit to the qualified names it must not use; a rule also
    forbids every name under it ("torch.autograd" forbids "torch.autograd.grad").
    Source that cannot be parsed yields no violations: importing it fails anyway.
    """
    if len(source.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
        return {}
    try:
        with warnings.catch_warnings():
            # Invalid escapes and the like in the student's file are not ours to report.
            warnings.simplefilter("ignore")
            tree = parse(source)
        module = _Module(tree, star_rules={rule for names in rules.values() for rule in names})
        found = {unit: _violations_of(module, unit, forbidden) for unit, forbidden in rules.items()}
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return {}
    return {unit: violations for unit, violations in found.items() if violations}


@dataclass(frozen=True)
class _Chain:
    """A name bound to `root.attr1.attr2...`, read in `scope`."""

    scope: "_Scope"
    root: str
    attributes: tuple[str, ...]


@dataclass(eq=False)
class _Scope:
    parent: "_Scope | None"
    is_class: bool = False
    # name -> what each binding of it binds: a qualified name (an import), a
    # _Chain (an alias assignment) or None (anything else).
    bindings: dict[str, list] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    nonlocal_names: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Reference:
    scope: _Scope
    root: str
    attributes: tuple[str, ...]
    line: int


class _Module:
    """Scopes, bindings, references and module-level definitions of one file."""

    def __init__(self, tree: ast.Module, star_rules: set[str]):
        self.scope = _Scope(parent=None)
        # name -> the module-level statements that define it
        self.definitions: dict[str, list[ast.stmt]] = {}
        # id(statement) -> references made inside that module-level definition
        self.references: dict[int, list[_Reference]] = {}
        self.star_imports: list[tuple[str, int]] = []
        self._resolved: dict[tuple[int, str], set[str]] = {}
        pending_bindings: list[tuple[_Scope, str, object]] = []
        self._collect(tree, pending_bindings)
        # Global and nonlocal declarations are known only after the whole
        # scope was seen, so bindings are placed afterwards.
        for scope, name, bound in pending_bindings:
            self._bind(scope, name, bound)
        for module_name, _ in self.star_imports:
            # A star import binds every name of the module; the ones that
            # matter are those leading to a forbidden name.
            for rule in star_rules:
                if rule.startswith(module_name + "."):
                    first = rule[len(module_name) + 1 :].split(".")[0]
                    self._bind(self.scope, first, f"{module_name}.{first}")

    def qualified_names(self, reference: _Reference) -> set[str]:
        """The qualified names `reference` may stand for."""
        suffix = "".join("." + attribute for attribute in reference.attributes)
        return {prefix + suffix for prefix in self._resolve(reference.scope, reference.root)}

    def binding_scope(self, scope: _Scope, name: str) -> _Scope | None:
        """The scope whose binding of `name` a reference in `scope` sees (Python's rules)."""
        current = scope
        while current is not None:
            if name in current.bindings and (current is scope or not current.is_class):
                return current
            current = current.parent
        return None

    def _resolve(self, scope: _Scope, name: str) -> set[str]:
        owner = self.binding_scope(scope, name)
        if owner is None:
            return set()
        key = (id(owner), name)
        if key in self._resolved:
            return self._resolved[key]
        self._resolved[key] = set()  # an alias cycle resolves to nothing
        names = set()
        for bound in owner.bindings[name]:
            if isinstance(bound, str):
                names.add(bound)
            elif isinstance(bound, _Chain):
                suffix = "".join("." + attribute for attribute in bound.attributes)
                names.update(prefix + suffix for prefix in self._resolve(bound.scope, bound.root))
        self._resolved[key] = names
        return names

    def _bind(self, scope: _Scope, name: str, bound) -> None:
        if name in scope.global_names:
            scope = self.scope
        elif name in scope.nonlocal_names:
            return  # it binds a name of an enclosing function: no alias we follow
        scope.bindings.setdefault(name, []).append(bound)

    def _collect(self, tree: ast.Module, pending: list) -> None:
        # An explicit stack rather than recursion: deeply nested source must
        # not overflow Python's stack.
        stack: list[tuple[ast.AST, _Scope, ast.stmt | None]] = [(node, self.scope, None) for node in tree.body]
        while stack:
            node, scope, owner = stack.pop()
            if scope is self.scope and isinstance(node, _DEFINING_STATEMENTS):
                owner = node
                self.references[id(node)] = []
                for name in _defined_names(node):
                    self.definitions.setdefault(name, []).append(node)
            stack.extend(self._visit(node, scope, owner, pending))

    def _visit(self, node: ast.AST, scope: _Scope, owner, pending: list) -> Iterator[tuple]:
        """Record what `node` binds and references; yield its children with their scope."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                pending.append((scope, node.name, None))
                yield from ((child, scope, owner) for child in node.decorator_list)
                if node.returns:
                    yield node.returns, scope, owner
            arguments = node.args
            yield from ((child, scope, owner) for child in arguments.defaults + arguments.kw_defaults if child)
            inner = _Scope(parent=scope)
            every_argument = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
            every_argument += [argument for argument in (arguments.vararg, arguments.kwarg) if argument]
            yield from ((argument, inner, owner) for argument in every_argument)
            body = node.body if isinstance(node.body, list) else [node.body]
            yield from ((child, inner, owner) for child in body)
            return
        if isinstance(node, ast.ClassDef):
            pending.append((scope, node.name, None))
            for child in node.decorator_list + node.bases + node.keywords:
                yield child, scope, owner
            inner = _Scope(parent=scope, is_class=True)
            yield from ((child, inner, owner) for child in node.body)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            inner = _Scope(parent=scope)
            yield from ((child, inner, owner) for child in ast.iter_child_nodes(node))
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.names[0].name == "*":
                self.star_imports.append((node.module, node.lineno))
            for name, bound in _imported(node):
                pending.append((scope, name, bound))
                if owner is not None and bound is not None:
                    # Importing a forbidden name counts as using it, so that
                    # `from torch.nn import Sigmoid` charges the unit Sigmoid.
                    self.references[id(owner)].append(_Reference(scope, name, (), node.lineno))
            return
        if isinstance(node, ast.Global):
            scope.global_names.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            scope.nonlocal_names.update(node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            chain = _chain(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if chain is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        pending.append((scope, target.id, _Chain(scope, chain[0], chain[1])))
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                pending.append((scope, node.id, None))
            elif owner is not None:
                self.references[id(owner)].append(_Reference(scope, node.id, (), node.lineno))
            return
        elif isinstance(node, ast.Attribute):
            chain = _chain(node)
            if chain is not None:
                # Only the whole chain counts: its prefixes are not uses.
                if owner is not None:
                    self.references[id(owner)].append(_Reference(scope, chain[0], chain[1], node.lineno))
                return
        elif isinstance(node, ast.arg):
            pending.append((scope, node.arg, None))
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            pending.append((scope, node.name, None))
        elif isinstance(node, ast.MatchMapping) and node.rest:
            pending.append((scope, node.rest, None))
        yield from ((child, scope, owner) for child in ast.iter_child_nodes(node))


# Module-level statements that define names a unit can use.
_DEFINING_STATEMENTS = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import,
    ast.ImportFrom,
)


def _imported(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(local name, qualified name or None) for each name an import binds; None for relative imports."""
    if isinstance(node, ast.Import):
        bound = []
        for alias in node.names:
            if alias.asname:
                bound.append((alias.asname, alias.name))
            else:  # `import a.b.c` binds `a`
                first = alias.name.split(".")[0]
                bound.append((first, first))
        return bound
    absolute = node.level == 0
    return [
        (alias.asname or alias.name, f"{node.module}.{alias.name}" if absolute else None)
        for alias in node.names
        if alias.name != "*"
    ]


def _defined_names(statement: ast.stmt) -> Iterable[str]:
    """Names a module-level statement defines or changes.

    `Sigmoid.forward = ...` changes Sigmoid, so its root name counts too.
    """
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [name for name, _ in _imported(statement)]
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    names = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.append(node.id)
    return names


def _chain(node: ast.expr) -> tuple[str, tuple[str, ...]] | None:
    """("torch", ("nn", "functional")) for `torch.nn.functional`; None unless a pure chain."""
    attributes = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return node.id, tuple(reversed(attributes))


def _violations_of(module: _Module, unit: str, forbidden: list[str]) -> list[Violation]:
    if unit not in module.definitions:
        return []
    found = set()
    for module_name, line in module.star_imports:
        if any(module_name == rule or module_name.startswith(rule + ".") for rule in forbidden):
            found.add(Violation(unit, f"{module_name}.*", line))
    # Walk the module-level definitions the unit uses, starting with its own.
    to_visit = list(module.definitions[unit])
    visited = {id(statement) for statement in to_visit}
    while to_visit:
        statement = to_visit.pop()
        for reference in module.references[id(statement)]:
            for name in module.qualified_names(reference):
                if any(name == rule or name.startswith(rule + ".") for rule in forbidden):
                    found.add(Violation(unit, name, reference.line))
            if module.binding_scope(reference.scope, reference.root) is module.scope:
                for used in module.definitions.get(reference.root, []):
                    if id(used) not in visited:
                        visited.add(id(used))
                        to_visit.append(used)
    return sorted(found, key=lambda violation: (violation.line, violation.name))
