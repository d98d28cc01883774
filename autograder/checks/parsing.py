"""`ast.parse` one thread at a time, of source no larger than the grader can afford.

CPython 3.11 can fail when several threads parse at once (gh-106905:
"SystemError: AST constructor recursion depth mismatch"), and graders run in
threads (tests grade submissions concurrently). Every parse of Python source
in the package goes through here.

Parsing costs memory per syntax element, not per byte: a file of `a;` repeated
costs about 900 bytes of memory per byte (a 16 MiB notebook cell asked for
14 GiB). Before parsing, the source's syntax units (names and numbers,
operator and bracket characters, line ends: an upper bound on its tokens, and
so on its tree's nodes, f-strings' insides included) are counted in one pass
of C code, and a source with too many is refused (TooLargeToParse). Measured
over adversarial shapes (`a;`, `1\n`, `a\r`, `1or `, `lambda:0`, `a[::]`, `f(*a)`,
`[a,a,...]`, f-strings of many fields), a parse costs at most about 950 bytes of memory and
15 µs of CPU per unit, so PARSE_UNITS_CAP bounds one parse to about 95 MiB and
1.5 s. Parsing in a child process under a memory limit would bound it too, but
callers need the tree itself, and forking a grader that holds torch's threads
is not safe: a count that bounds the cost before any of it is paid is.
"""

import ast
import threading
import warnings

PARSE_BYTES_CAP = 1 << 20  # as engine.runner.SOURCE_CAP: no source the grader keeps is larger
# Syntax units per source: a homework file has 1,000 to 7,000, torch/nn/functional.py (6,000 lines) 68,000.
PARSE_UNITS_CAP = 100_000

_lock = threading.Lock()
# Each byte's class: digits "0", other name bytes "a", line ends (\n and \r, as Python reads them) "\n",
# blanks " ", every other visible byte ".".
_UNIT_CLASSES = bytes(
    0x30 if chr(b).isdigit() else 0x61 if chr(b).isalnum() or b == 0x5F or b >= 0x80
    else 0x0A if b in (0x0A, 0x0D) else 0x20 if chr(b).isspace() else 0x2E
    for b in range(256)
)
# Where a name or number starts, and a digit followed by a letter: `1or` is two tokens, the number 1 and `or`.
_UNIT_STARTS = (b" a", b".a", b"\na", b" 0", b".0", b"\n0", b"0a")


class TooLargeToParse(ValueError):
    """A source over the caps above: the message says what to change."""


def syntax_units(source: bytes) -> int:
    """Names and numbers, operator and bracket characters (inside strings too) and line ends of source."""
    classes = (b" " + source).translate(_UNIT_CLASSES)
    return classes.count(b".") + classes.count(b"\n") + sum(classes.count(start) for start in _UNIT_STARTS)


def check_parse_cost(source: str | bytes, filename: str = "<unknown>") -> None:
    """Raise TooLargeToParse when parsing source would cost more than the caps allow."""
    encoded = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    if len(encoded) > PARSE_BYTES_CAP:
        raise TooLargeToParse(f"{filename} is {len(encoded) / 2**20:.1f} MiB, over the {PARSE_BYTES_CAP >> 20} MiB "
                              "of source the grader parses: hand in the code, not data")
    units = syntax_units(encoded)
    if units > PARSE_UNITS_CAP:
        raise TooLargeToParse(f"{filename} has {units:,} syntax units (names, numbers, operators, line ends), over the "
                              f"{PARSE_UNITS_CAP:,} the grader parses (a homework file has a few thousand): "
                              "hand in the code, not data")


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    check_parse_cost(source, filename)
    with _lock, warnings.catch_warnings():
        # A SyntaxWarning per `1or` or invalid escape: the student's to see when running the code, and
        # tens of thousands of them cost seconds and flood the grader's stderr.
        warnings.simplefilter("ignore")
        return ast.parse(source, filename)
