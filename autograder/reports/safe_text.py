"""Text from student code made inert before it leaves the grader.

Check messages, hidden checks' summaries (an exception class's name is the student's to
choose), submission notes (zip entry names) and student ids can hold anything a Python
string can: lone surrogates (no encoding can write them: the writer raises), terminal
escape sequences (clear the screen, set the window title, write the clipboard with OSC 52,
hide text with SGR 8), carriage returns that overwrite a line, bidi overrides that show text
in another order than it reads. clean() is the one place that takes them out; every
writer calls it (clean_result at its entry for a whole result) and adds its format's own
escaping on top (HTML, Markdown, XML, CSV, GitHub workflow commands).

Results are stored in the gradebook as given: cleaning is a view, done at each exit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from autograder.engine.results import SubmissionResult

# Control strings (OSC, DCS, SOS, PM, APC), 7- and 8-bit introducers: their payload goes with
# them (no "]52;c;..." left behind). They end at BEL or ST; an unterminated one at the next
# ESC or the end of the line, so the text after it stays readable.
_CONTROL_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
# CSI (ESC [ or 8-bit 0x9B): parameters, intermediates, a final byte.
_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
# Any other escape: ESC, intermediates, one final character (ESC c resets the terminal, ESC 7 saves the cursor).
_ESCAPE = r"\x1b[ -/]*[0-~]?"
_SEQUENCES = re.compile("|".join((_CONTROL_STRING, _CSI, _ESCAPE)))

# Line breaks other than \n, told apart before anything is removed: \r alone overwrites a line.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
# What is left to drop: C0 controls but tab and newline, DEL, C1 controls, the bidi marks,
# embeddings, overrides and isolates (Trojan Source: text shown in another order than it reads),
# and the invisible ones that hide text: zero-width space, word joiners, the BOM, tag characters.
# Kept: U+200C and U+200D (zero-width non-joiner and joiner: Persian words, emoji sequences).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\U000e0000-\U000e007f]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str, *, multiline: bool = True) -> str:
    """text safe to print, write in any encoding of Unicode, or embed (before the format's own escaping).

    Lone surrogates become U+FFFD (a proper pair becomes its character); escape sequences and
    controls go; line breaks become \\n. multiline=False: newlines and tabs become spaces too,
    for formats where a line ends the field (a table cell, a log line, a CSV cell)."""
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", _SEQUENCES.sub("", text))
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    return text


def clean_result(result: SubmissionResult) -> SubmissionResult:
    """A copy of result whose every text field is clean (messages and notes keep their lines)."""
    checks = [
        replace(check, id=clean(check.id, multiline=False), message=clean(check.message),
                visibility=clean(check.visibility, multiline=False))
        for check in result.checks
    ]
    one_line = {name: clean(getattr(result, name), multiline=False)
                for name in ("assignment", "student", "sandbox", "submitted_at", "submitted_at_source")}
    return replace(result, checks=checks, notes=[clean(note) for note in result.notes], **one_line)


class CleanFormatter(logging.Formatter):
    """Log lines cleaned: a grader's traceback can quote what student code raised."""

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record))
