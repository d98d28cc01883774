"""Python source is parsed by one thread at a time (CPython 3.11, gh-106905)."""

import ast
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from autograder.checks import parsing


def test_parses_never_overlap(monkeypatch):
    inside, most = 0, 0
    count = threading.Lock()
    real_parse = ast.parse

    def slow_parse(*args, **kwargs):
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)  # long enough for the other threads to arrive
        try:
            return real_parse(*args, **kwargs)
        finally:
            with count:
                inside -= 1

    monkeypatch.setattr(ast, "parse", slow_parse)
    with ThreadPoolExecutor(max_workers=8) as pool:
        trees = list(pool.map(lambda n: parsing.parse(f"x = {n}\n"), range(32)))
    assert most == 1
    assert [tree.body[0].value.value for tree in trees] == list(range(32))
