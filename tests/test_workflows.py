"""The GitHub Actions workflows are valid and do what the book relies on.

`check-jsonschema --builtin-schema vendor.github-workflows` validates each file against
GitHub's workflow schema, offline (the schema ships with check-jsonschema). The other checks
read the steps: the test workflow installs the Debian packages the tests need and runs
`make test` on Python 3.11; the deploy workflow builds with `make book` and publishes
`_build/html` to GitHub Pages with the permissions Pages requires.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    """The job's steps that use `action` (any version)."""
    return [step for step in steps(job) if step.get("uses", "").split("@")[0] == action]


def run_lines(job: dict) -> list[str]:
    """Every shell line the job runs, one command per item."""
    return [
        line.strip()
        for step in steps(job)
        for line in step.get("run", "").splitlines()
        if line.strip()
    ]


def runs_python_311(job: dict) -> bool:
    """Python 3.11 comes from the job's container image or from actions/setup-python."""
    container = job.get("container", "")
    image = container.get("image", "") if isinstance(container, dict) else container
    from_setup = any(
        str(step.get("with", {}).get("python-version")) == "3.11"
        for step in uses(job, "actions/setup-python")
    )
    return image.startswith("python:3.11") or from_setup


def validate(path: Path) -> subprocess.CompletedProcess:
    """Run check-jsonschema against GitHub's workflow schema."""
    command = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["test.yml", "deploy.yml"])
def test_workflow_is_valid_for_github_actions(name: str) -> None:
    result = validate(WORKFLOWS / name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_rejects_a_job_without_runs_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: make test\n")
    assert validate(broken).returncode != 0


def test_tests_run_on_every_push_and_pull_request() -> None:
    triggers = load("test.yml")["on"]
    assert "push" in triggers and "pull_request" in triggers
    assert (triggers["push"] or {}).get("branches") is None, "every branch, not only main"


def test_test_job_installs_the_debian_packages_and_runs_make_test_on_python_311() -> None:
    (job,) = load("test.yml")["jobs"].values()
    lines = run_lines(job)
    assert uses(job, "actions/checkout")
    assert runs_python_311(job)
    assert "apt-get update -q" in lines or "apt-get update" in lines
    installs = [line for line in lines if line.startswith("apt-get install")]
    assert len(installs) == 1
    assert " -y" in installs[0]
    assert {"dataset-fashion-mnist", "chromium"} <= set(installs[0].split())
    assert lines.index(installs[0]) < lines.index("make test")
    assert lines[-1] == "make test"


def test_deploy_runs_on_pushes_to_main_only() -> None:
    triggers = load("deploy.yml")["on"]
    assert triggers["push"]["branches"] == ["main"]
    assert "pull_request" not in triggers


def test_deploy_has_the_permissions_github_pages_needs() -> None:
    permissions = load("deploy.yml")["permissions"]
    assert permissions["pages"] == "write"
    assert permissions["id-token"] == "write"
    assert permissions.get("contents") in (None, "read")


def test_deploy_builds_with_make_book_and_uploads_the_html() -> None:
    build = load("deploy.yml")["jobs"]["build"]
    lines = run_lines(build)
    assert uses(build, "actions/checkout")
    assert runs_python_311(build)
    assert "make book" in lines
    (upload,) = uses(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    assert steps(build).index(upload) == len(steps(build)) - 1, "upload after the build"


def test_deploy_job_publishes_to_the_github_pages_environment() -> None:
    deploy = load("deploy.yml")["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    (step,) = uses(deploy, "actions/deploy-pages")
    assert deploy["environment"]["url"] == f"${{{{ steps.{step['id']}.outputs.page_url }}}}"
