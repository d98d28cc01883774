"""What our HTML pages share: their look, their shell, tables, and text made safe to show."""

from __future__ import annotations

import html
import re

from autograder.engine.course import Course

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
"""

# Terminal colour codes say nothing on a page or in a file; student output is full of them.
TERMINAL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(TERMINAL_CODES.pattern + r"|[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline


def plain(text: str) -> str:
    """text without terminal codes and control characters (tab and newline stay)."""
    return _CONTROL.sub("", text)


def escaped(text: str) -> str:
    return html.escape(plain(text))


def table(header: list[str], rows: list[list[str]], classes: list[list[str | None]] | None = None) -> list[str]:
    """An HTML table, every cell escaped; classes (rows' shape, None for none) gives cells a CSS class."""
    lines = ["<table>", "<tr>" + "".join(f"<th>{escaped(name)}</th>" for name in header) + "</tr>"]
    for row, row_classes in zip(rows, classes or [[None] * len(header)] * len(rows)):
        cells = "".join(
            f'<td class="{css}">{escaped(cell)}</td>' if css else f"<td>{escaped(cell)}</td>"
            for cell, css in zip(row, row_classes)
        )
        lines.append(f"<tr>{cells}</tr>")
    return lines + ["</table>"]


def document(title: str, extra_style: str, body: list[str]) -> str:
    """A standalone HTML page."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escaped(title)}</title>\n<style>{STYLE}{extra_style}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def in_course_order(course: Course, by_component: dict) -> list:
    """by_component's items, components in course.toml's order first, any others after."""
    order = {component.id: i for i, component in enumerate(course.components)}
    return sorted(by_component.items(), key=lambda item: order.get(item[0], len(order)))
