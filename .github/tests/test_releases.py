"""Every apps/<env>/release.yaml names what release.yaml would have produced from one commit on
main: the image `task-api:<that commit>` and the chart version Chart.yaml had there, from a
commit whose push ran release.yaml (the workflow existed there, and the commit touched one of
its paths). Nothing else exists in ECR to deploy. Needs the full history (CI: fetch-depth 0)."""

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import chart_bump  # noqa: E402
import promote  # noqa: E402

sys.path.pop(0)

REPO = Path(__file__).resolve().parents[2]
CHART = "apps/base/task-api/chart"
WORKFLOW = ".github/workflows/release.yaml"


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result


def path_filter(pattern: str) -> re.Pattern:
    """GitHub's filter globs: `**` crosses directories, `*` and `?` do not."""
    regex = ""
    for token in re.split(r"(\*\*|\*|\?)", pattern):
        regex += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(f"^{regex}$")


def push_runs_release(commit: str) -> tuple[bool, str]:
    shown = git("show", f"{commit}:{WORKFLOW}", check=False)
    if shown.returncode != 0:
        return False, f"{WORKFLOW} did not exist at {commit[:12]}"
    workflow = yaml.safe_load(shown.stdout)
    push = (workflow.get("on", workflow.get(True)) or {}).get("push") or {}
    if "main" not in (push.get("branches") or []):
        return False, f"release.yaml at {commit[:12]} does not run on pushes to main"
    parents = git("rev-list", "--parents", "-n", "1", commit).stdout.split()[1:]
    changed = git("diff", "--name-only", parents[0], commit).stdout.split() if parents else \
        git("ls-tree", "-r", "--name-only", commit).stdout.split()
    filters = [path_filter(p) for p in push.get("paths") or ["**"]]
    if not any(f.match(path) for f in filters for path in changed):
        return False, f"{commit[:12]} touched none of release.yaml's paths: no release ran for it"
    return True, ""


def release_files():
    return sorted((REPO / "apps").glob("*/release.yaml"))


def first_parent_line() -> set[str]:
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.fail("shallow clone: these checks need the full history (fetch-depth: 0)")
    return set(git("rev-list", "--first-parent", "HEAD").stdout.split())


def test_the_dev_job_writes_the_commit_and_the_chart_version_of_its_run():
    """The rule below reads the workflow's own wiring: image tag = github.sha, chart version =
    the chart job's output (Chart.yaml's version at that commit); test_release_jobs.py runs it."""
    workflow = yaml.safe_load((REPO / WORKFLOW).read_text())
    step = next(s for s in workflow["jobs"]["dev"]["steps"] if "promote.py set" in s.get("run", ""))
    assert step["env"] == {"IMAGE_TAG": "${{ github.sha }}", "CHART_VERSION": "${{ needs.chart.outputs.version }}"}
    assert "steps.version.outputs.version" in workflow["jobs"]["chart"]["outputs"]["version"]


@pytest.mark.parametrize("path", release_files(), ids=lambda p: p.parent.name)
def test_the_release_file_names_what_release_produced_from_one_commit_on_main(path):
    release = promote.read_release(path.read_text(), str(path))
    commit = release.image_tag
    main_line = first_parent_line()
    assert git("cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0, (
        f"{path.relative_to(REPO)}: image tag {commit} is no commit of this repository"
    )
    assert commit in main_line, f"{path.relative_to(REPO)}: {commit[:12]} is not a commit on main"
    runs, why = push_runs_release(commit)
    assert runs, f"{path.relative_to(REPO)}: no image task-api:{commit[:12]} was ever built: {why}"
    version_then = chart_bump.chart_version(git("show", f"{commit}:{CHART}/Chart.yaml").stdout, f"Chart.yaml at {commit[:12]}")
    assert release.chart_version == version_then, (
        f"{path.relative_to(REPO)}: chart {release.chart_version} with image {commit[:12]}, "
        f"but the release of {commit[:12]} produced chart {version_then}"
    )
    _, retired = chart_bump.load_waivers(REPO / ".github" / "chart-history-waivers.yaml")
    assert release.chart_version not in retired, (
        f"{path.relative_to(REPO)}: chart {release.chart_version} named several charts; it is retired"
    )


def test_the_path_filter_follows_github_globs():
    assert path_filter("crates/**").match("crates/task-api/src/main.rs")
    assert path_filter("Cargo.toml").match("Cargo.toml") and not path_filter("Cargo.toml").match("x/Cargo.toml")
    assert not path_filter("apps/*/x").match("apps/a/b/x")
    assert fnmatch.fnmatchcase("a", "a")
