"""The result as JUnit XML (one testsuite, one testcase per check) for CI systems and test viewers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from autograder.engine.results import SubmissionResult
from autograder.reports.safe_text import clean, clean_result

# What XML 1.0 forbids and clean() leaves: U+FFFE and U+FFFF (controls and surrogates are gone by then).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_ELEMENT = {"failed": "failure", "error": "error", "timeout": "error", "skipped": "skipped"}


def xml_text(text: str) -> str:
    """text cleaned (safe_text), with what XML 1.0 cannot hold taken out."""
    return _NOT_XML.sub("", clean(text))


def junit_xml(result: SubmissionResult) -> str:
    """The JUnit XML document for result; hidden checks carry their status only, no message."""
    result = clean_result(result)
    statuses = [c.status for c in result.checks]
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=xml_text(result.assignment),
        tests=str(len(statuses)),
        failures=str(statuses.count("failed")),
        errors=str(statuses.count("error") + statuses.count("timeout")),
        skipped=str(statuses.count("skipped")),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("student", result.student),
        ("score", f"{result.score:g}"),
        ("max_score", f"{result.max_score:g}"),
        ("sandbox", result.sandbox),
    ):
        ET.SubElement(properties, "property", name=name, value=xml_text(value))
    for check in result.checks:
        *unit, aspect = check.id.split(".", 2)  # file stem, unit, then the aspect (with any ".cuda")
        testcase = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(".".join([result.assignment, *unit])),
            name=xml_text(aspect),
        )
        points = ET.SubElement(testcase, "properties")  # pytest's place for a testcase's own data
        ET.SubElement(points, "property", name="score", value=f"{check.score:g}")
        ET.SubElement(points, "property", name="max_score", value=f"{check.max_score:g}")
        if check.status == "passed":
            continue
        outcome = ET.SubElement(testcase, _ELEMENT[check.status], type=check.status)
        if check.visibility != "public":
            outcome.set("message", f"hidden check: {check.status}")
            continue
        message = xml_text(check.message)
        outcome.set("message", next((line for line in message.splitlines() if line.strip()), check.status))
        if message and check.status != "skipped":
            outcome.text = message
    if result.notes:
        ET.SubElement(suite, "system-out").text = xml_text("\n".join(result.notes))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
