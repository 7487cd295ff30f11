"""The GitHub workflows: lint-clean, the same as a new project's, and doing what they say.

actionlint is the real linter (type checks of expressions, action inputs,
shellcheck of ``run:`` scripts when shellcheck is installed); the pull-request
workflow's ``diff`` step is also run here, against a merge commit laid out the
way GitHub prepares one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from announcer.workflow import scaffold

from .conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
REPO_INSTALL = "pip install ."  # this repository installs the checkout it tests


def actionlint() -> str:
    """The actionlint binary: beside this Python (a pip-installed wheel), or on PATH."""
    found = Path(sys.executable).with_name("actionlint")
    if found.is_file():
        return str(found)
    on_path = shutil.which("actionlint")
    assert on_path, "actionlint is not installed: the test dependencies provide it"
    return on_path


def lint(root: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-oneline", "-no-color", *map(str, files)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_workflow_in_the_repository_passes_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {"pr.yml", "pages.yml"} <= {f.name for f in files}
    result = lint(ROOT, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_projects_workflows_pass_actionlint(tmp_path: Path) -> None:
    scaffold.init_project(tmp_path, timezone="UTC")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    files = [tmp_path / path for path in scaffold.WORKFLOWS]
    result = lint(tmp_path, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_fail_on_a_broken_workflow(tmp_path: Path) -> None:
    """So a green run above means something: an undefined step output is an error."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = scaffold.workflow("pr.yml").replace("steps.describe.outcome", "steps.describ.outcome")
    broken.write_text(text, encoding="utf-8")
    result = lint(tmp_path, broken)
    assert result.returncode == 1
    assert "describ" in result.stdout


@pytest.mark.parametrize("name", ["pr.yml", "pages.yml"])
def test_the_repositorys_workflows_are_the_skeletons(name: str) -> None:
    """One source: what this repository runs is what 'announcer init' gives organisers."""
    assert (WORKFLOWS / name).read_text(encoding="utf-8") == scaffold.workflow(name, REPO_INSTALL)


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(scaffold.workflow(name))
    return data


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return found


def test_pull_requests_are_checked_and_get_the_diff_as_a_comment() -> None:
    workflow = load("pr.yml")
    assert list(workflow[True]) == ["pull_request"]  # YAML 1.1 reads the key 'on' as True
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    runs = [step.get("run", "") for step in steps(workflow, "check")]
    assert "announcer check" in runs
    assert "announcer diff --against HEAD^1 --format markdown > diff.md" in runs
    comment = next(
        s for s in steps(workflow, "check") if s.get("name") == "Comment on the pull request"
    )
    assert "gh pr comment" in comment["run"] and "--edit-last" in comment["run"]
    checkout = steps(workflow, "check")[0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 2


def test_main_is_built_and_deployed_to_pages() -> None:
    workflow = load("pages.yml")
    assert workflow[True]["push"] == {"branches": ["main"]}
    assert workflow["permissions"] == {"contents": "write", "pages": "write", "id-token": "write"}
    build = steps(workflow, "build")
    assert any("announcer build --out" in step.get("run", "") for step in build)
    upload = next(
        s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact@")
    )
    assert upload["with"]["path"] == "${{ runner.temp }}/site"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_the_diff_step_compares_a_merge_commit_with_its_base(tmp_path: Path) -> None:
    """GitHub checks out refs/pull/N/merge: HEAD^1 is the base branch, HEAD the merged result."""
    root = tmp_path / "site"
    scaffold.init_project(root, timezone="UTC")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "base")
    git("checkout", "-qb", "topic")
    event = next((root / "series" / "seminars" / "events").iterdir())
    event.write_text(event.read_text(encoding="utf-8").replace("12:00", "14:00"), encoding="utf-8")
    git("commit", "-qam", "later")
    git("checkout", "-q", "main")
    git("merge", "-q", "--no-ff", "-m", "merge", "topic")
    step = next(
        s["run"] for s in steps(load("pr.yml"), "check") if "announcer diff" in s.get("run", "")
    )
    announcer = Path(sys.executable).with_name("announcer")
    shell = step.replace("announcer ", f"{announcer} ", 1)
    subprocess.run(["bash", "-e", "-c", shell], cwd=root, check=True, timeout=120)
    comment = (root / "diff.md").read_text(encoding="utf-8")
    assert "| rescheduled | **Welcome seminar**" in comment
