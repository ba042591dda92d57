"""A pull request that changes the chart must raise its version (real git repositories)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chart_bump.py"
CHART = "apps/base/task-api/chart"


def git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo, check=True, capture_output=True,
    )


def write_chart(repo, version, template="kind: Service\n"):
    chart = repo / CHART
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: task-api\n# bump on change\nversion: {version}\nappVersion: \"0.1.0\"\n"
    )
    (chart / "templates" / "service.yaml").write_text(template)


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    write_chart(tmp_path, "0.1.0")
    (tmp_path / "README.md").write_text("x\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    git(tmp_path, "checkout", "-qb", "feature")
    return tmp_path, base


def run(repo, base):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--base", base, "--chart", CHART],
        cwd=repo, capture_output=True, text=True, check=False,
    )


def commit(repo, message="change"):
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)


def test_unrelated_change_passes(repo):
    path, base = repo
    (path / "README.md").write_text("y\n")
    commit(path)
    result = run(path, base)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout


def test_chart_change_without_bump_fails(repo):
    path, base = repo
    write_chart(path, "0.1.0", "kind: Service\nmetadata: {}\n")
    commit(path)
    result = run(path, base)
    assert result.returncode == 1
    assert "raise `version:`" in result.stderr


@pytest.mark.parametrize("version", ["0.0.9", "0.1.0-rc.1"])
def test_chart_change_with_lower_version_fails(repo, version):
    path, base = repo
    write_chart(path, version, "kind: Service\nmetadata: {}\n")
    commit(path)
    assert run(path, base).returncode == 1


@pytest.mark.parametrize("version", ["0.1.1", "0.2.0", "1.0.0", "0.1.1-rc.1"])
def test_chart_change_with_higher_version_passes(repo, version):
    path, base = repo
    write_chart(path, version, "kind: Service\nmetadata: {}\n")
    commit(path)
    result = run(path, base)
    assert result.returncode == 0, result.stderr
    assert f"0.1.0 -> {version}" in result.stdout


def test_uncommitted_working_tree_counts(repo):
    path, base = repo
    write_chart(path, "0.1.0", "kind: ConfigMap\n")
    assert run(path, base).returncode == 1


def test_prerelease_ordering_follows_semver():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import chart_bump
    finally:
        sys.path.pop(0)
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    assert sorted(ordered, key=chart_bump.precedence) == ordered


def test_unknown_base_is_a_usage_error(repo):
    path, _ = repo
    assert run(path, "0" * 40).returncode == 2
