"""The repository's own documents point only inside the repository: a clone has everything they name.

Every Markdown link that is not a web address, and every path inside an inline code span
that starts at one of the repository's top-level folders, must resolve to a file or folder
of the repository, without climbing out of it."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
WEB = re.compile(r"^(https?|mailto):")
TOP_FOLDERS = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))
PLACEHOLDER = re.compile(r"[<>*{}]|\.\.\.")  # reference/<hw>/, feedback/*.html: a pattern, not a path


def links(text: str) -> list[str]:
    return [target for target in LINK.findall(FENCE.sub("", text)) if not WEB.match(target)]


def path_references(text: str) -> list[str]:
    """Words of inline code spans that name a path under a top-level folder (`autograder/checks/`)."""
    found = []
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        for word in span.split():
            word = word.strip(",;:()")
            if "/" in word and word.split("/")[0] in TOP_FOLDERS and not PLACEHOLDER.search(word):
                found.append(word)
    return found


def unresolved(document: Path, targets: list[str], base: Path) -> list[str]:
    problems = []
    for target in targets:
        path = (base / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT):
            problems.append(f"{target} (outside the repository)")
        elif not path.exists():
            problems.append(f"{target} (no such file)")
    return problems


def test_the_documents_exist():
    assert {p.name for p in DOCUMENTS} >= {"README.md", "architecture.md", "homework-contract.md", "authoring.md"}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_path_resolves_inside_the_repository(document):
    text = document.read_text(encoding="utf-8")
    problems = unresolved(document, links(text), document.parent)
    problems += unresolved(document, path_references(text), ROOT)
    assert not problems, f"{document.relative_to(ROOT)} names what a clone lacks: {problems}"
    assert "../shared" not in text and "/work/" not in text


def test_the_readme_links_every_document_of_docs():
    linked = set(links((ROOT / "README.md").read_text(encoding="utf-8")))
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked


def test_a_link_or_path_outside_the_repository_is_found(tmp_path):
    """The checks above can fail: a climbing link, a missing file and a missing code path are all caught."""
    text = "See [design](../shared/DESIGN.md), [gone](docs/gone.md) and `autograder/nowhere.py`."
    document = ROOT / "README.md"
    assert unresolved(document, links(text), ROOT) == ["../shared/DESIGN.md (outside the repository)", "docs/gone.md (no such file)"]
    assert unresolved(document, path_references(text), ROOT) == ["autograder/nowhere.py (no such file)"]


def test_the_cluster_recipes_start_the_worker_command_as_it_is():
    """docs/cluster: the Kubernetes workers reach the scheduler's Service, give one slot per requested core and
    use only options `autograder worker` has; the Slurm job script parses and does the same."""
    import subprocess

    import yaml

    from autograder.cli import worker

    options = {name for parameter in worker.params for name in parameter.opts}
    documents = list(yaml.safe_load_all((ROOT / "docs" / "cluster" / "kubernetes.yaml").read_text()))
    service = next(d for d in documents if d["kind"] == "Service")
    deployments = [d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] != "autograder-scheduler"]
    assert len(deployments) == 2
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        line = container["command"] + container.get("args", [])
        assert line[:3] == ["autograder", "worker", f"tcp://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"]
        assert {word for word in line[3:] if word.startswith("--")} <= options
        assert line[line.index("--slots") + 1] == container["resources"]["requests"]["cpu"]
    script = ROOT / "docs" / "cluster" / "slurm-worker.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    used = set(re.findall(r"autograder worker \S+ (.*)", script.read_text())[0].split())
    assert {word for word in used if word.startswith("--")} <= options
