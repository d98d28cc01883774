"""What our HTML pages share: their look, their shell, tables, and text made safe to show."""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import quote

from autograder.engine.course import Course
from autograder.reports.safe_text import clean

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
"""

@dataclass(frozen=True)
class Link:
    """A table cell that links to href (a path relative to the page) and shows text."""

    text: str
    href: str


def escaped(text: str) -> str:
    """text for HTML, student text included: cleaned (safe_text), then escaped."""
    return html.escape(clean(text))


def table(header: list[str], rows: list[list[str | Link]], classes: list[list[str | None]] | None = None) -> list[str]:
    """An HTML table, every cell escaped; classes (rows' shape, None for none) gives cells a CSS class."""
    lines = ["<table>", "<tr>" + "".join(f"<th>{escaped(name)}</th>" for name in header) + "</tr>"]
    for row, row_classes in zip(rows, classes or [[None] * len(header)] * len(rows)):
        cells = "".join(
            f'<td class="{css}">{_cell(cell)}</td>' if css else f"<td>{_cell(cell)}</td>"
            for cell, css in zip(row, row_classes)
        )
        lines.append(f"<tr>{cells}</tr>")
    return lines + ["</table>"]


def _cell(cell: str | Link) -> str:
    if isinstance(cell, Link):  # the path quoted, so that no character of it ends the attribute or the URL's path
        return f'<a href="{html.escape(quote(cell.href))}">{escaped(cell.text)}</a>'
    return escaped(cell)


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
