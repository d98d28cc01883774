"""Test order: the files that grade whole classes of submissions first, so that the two pytest
processes of `make test` (a file each at a time) finish together instead of one of them grading
hw2's races alone at the end."""

LONGEST_FIRST = ("test_hw2_grading.py", "test_hw1_grading.py", "test_batch.py", "test_wheel.py", "test_notebooks.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept
