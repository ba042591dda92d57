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


# --- what counts as a change: what `helm package` ships ---------------------------------------

HELMIGNORE = "tests/\nci/\n*.swp\n"


def write_ignored_chart(repo, version, template="kind: Service\n", test="assert True\n", comment="# bump on change"):
    write_chart(repo, version, template)
    chart = repo / CHART
    (chart / ".helmignore").write_text(HELMIGNORE)
    (chart / "tests").mkdir(exist_ok=True)
    (chart / "tests" / "test_x.py").write_text(test)
    text = (chart / "Chart.yaml").read_text().replace("# bump on change", comment)
    (chart / "Chart.yaml").write_text(text)


@pytest.fixture
def ignoring_repo(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    write_ignored_chart(tmp_path, "0.1.0")
    commit(tmp_path, "base")
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    git(tmp_path, "checkout", "-qb", "feature")
    return tmp_path, base


@pytest.mark.parametrize("change", [
    {"test": "assert 1 == 1\n"},  # chart tests are not packaged (.helmignore)
    {"comment": "# a reworded comment"},  # Chart.yaml is compared by its fields
])
def test_changes_helm_does_not_package_need_no_bump(ignoring_repo, change):
    path, base = ignoring_repo
    write_ignored_chart(path, "0.1.0", **change)
    commit(path)
    result = run(path, base)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout


def test_an_app_version_change_is_a_chart_change(ignoring_repo):
    path, base = ignoring_repo
    chart_yaml = path / CHART / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace('appVersion: "0.1.0"', 'appVersion: "0.2.0"'))
    commit(path)
    assert run(path, base).returncode == 1


def head(repo):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def run_history(repo, waivers=None):
    args = [sys.executable, str(SCRIPT), "--chart", CHART, "--history"]
    if waivers is not None:
        args += ["--waivers", str(waivers)]
    return subprocess.run(args, cwd=repo, capture_output=True, text=True, check=False)


@pytest.fixture
def main_line(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_ignored_chart(repo, "0.1.0")
    commit(repo, "chart 0.1.0")
    return repo


def test_history_passes_when_every_change_raised_the_version(main_line):
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {}\n")
    commit(main_line)
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {}\n", test="assert 2\n")
    commit(main_line, "tests only")
    result = run_history(main_line)
    assert result.returncode == 0, result.stderr


def test_history_fails_when_a_commit_changed_the_chart_under_the_same_version(main_line):
    write_ignored_chart(main_line, "0.1.0", template="kind: Service\nmetadata: {}\n")
    commit(main_line, "sneaky")
    sneaky = head(main_line)
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {labels: {}}\n")
    commit(main_line, "later bump")
    result = run_history(main_line)
    assert result.returncode == 1
    assert f"commit {sneaky[:12]}" in result.stderr and "version 0.1.0" in result.stderr


def test_history_fails_when_a_version_comes_back_with_other_content(main_line):
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {}\n")
    commit(main_line)
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\n")  # content of 0.1.0, name 0.2.0
    commit(main_line, "revert the template only")
    assert run_history(main_line).returncode == 1


def test_history_counts_the_working_tree(main_line):
    write_ignored_chart(main_line, "0.1.0", template="kind: ConfigMap\n")
    assert run_history(main_line).returncode == 1


def test_only_old_commits_can_be_waived_and_each_waiver_needs_a_reason(main_line, tmp_path):
    write_ignored_chart(main_line, "0.1.0", template="kind: Service\nmetadata: {}\n")
    commit(main_line, "old sin")
    old = head(main_line)
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {a: 1}\n")
    commit(main_line, "bump")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(f"before: {old}\nversions:\n  '0.1.0':\n    reason: before the rule\n    commits: [{old}]\n")
    result = run_history(main_line, waivers)
    assert result.returncode == 0, result.stderr
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {b: 2}\n")
    commit(main_line, "new sin")
    new = head(main_line)
    waivers.write_text(f"before: {old}\nversions:\n  '0.2.0':\n    reason: please\n    commits: [{new}]\n")
    assert run_history(main_line, waivers).returncode == 1, "a commit after `before` cannot be waived"
    waivers.write_text(f"before: {old}\nversions:\n  '0.1.0':\n    commits: [{old}]\n")
    assert run_history(main_line, waivers).returncode == 1, "a waiver without a reason"


def test_history_refuses_a_shallow_clone(main_line, tmp_path):
    write_ignored_chart(main_line, "0.2.0", template="kind: Service\nmetadata: {}\n")
    commit(main_line)
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{main_line}", str(shallow)], check=True)
    result = run_history(shallow)
    assert result.returncode == 2 and "fetch-depth: 0" in result.stderr


# --- the repository itself ---------------------------------------------------------------------

REPO = SCRIPT.parents[2]


def load_script():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import chart_bump
    finally:
        sys.path.pop(0)
    return chart_bump


def test_the_packaged_file_list_is_what_helm_package_ships(tmp_path):
    import shutil
    import tarfile

    helm = shutil.which("helm")
    if helm is None:
        pytest.fail("helm is missing: source .ci/tools.sh")
    chart_bump = load_script()
    chart = REPO / CHART
    subprocess.run([helm, "package", str(chart), "--destination", str(tmp_path)], check=True, capture_output=True)
    (archive,) = tmp_path.glob("task-api-*.tgz")
    with tarfile.open(archive) as tar:
        shipped = sorted(m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile())
    assert list(chart_bump.state_of_directory(chart).files) == shipped


def test_the_repository_history_names_one_chart_per_version():
    """On every commit (and the working tree): whoever changes what the chart ships raises its
    version in the same change. Needs the full history (CI checks out with fetch-depth: 0)."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--chart", CHART, "--history"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
