"""actionlint (with shellcheck), zizmor and shellcheck over the workflows and their scripts.
Each linter is first shown a planted defect, so a linter that silently checks nothing fails."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.y*ml"))
# The workflows' scripts and the workspace's own (benchmark helpers).
SCRIPTS = sorted((GITHUB / "scripts").glob("*.sh")) + sorted(REPO.glob("crates/*/scripts/*.sh"))


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: source .ci/tools.sh")
    return path


def actionlint(*paths: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *map(str, paths)],
        cwd=cwd, capture_output=True, text=True, check=False,
    )


def zizmor(*targets: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("zizmor"), "--offline", "--persona=pedantic", "--config", str(GITHUB / "zizmor.yml"),
         "--format=json", "--no-progress", *map(str, targets)],
        capture_output=True, text=True, check=False,
    )


PLANTED = """\
name: planted
on: push
permissions: {}
jobs:
  x:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}" && echo $UNQUOTED
"""


def test_actionlint_catches_a_planted_defect(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    bad = tmp_path / ".github" / "workflows" / "bad.yaml"
    bad.write_text(PLANTED)
    result = actionlint(bad, cwd=tmp_path)
    assert result.returncode == 1
    assert "shellcheck" in result.stdout, "actionlint ran without shellcheck"
    assert "expression-injection" in result.stdout or "untrusted" in result.stdout


def test_actionlint_and_shellcheck_are_clean_on_every_workflow():
    assert WORKFLOWS
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def findings(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode in (0, 10, 11, 12, 13, 14), result.stderr
    return json.loads(result.stdout or "[]")


def location(finding: dict) -> str:
    where = finding["locations"][0]
    path = next(iter(where["symbolic"]["key"].values()), {})
    row = where.get("concrete", {}).get("location", {}).get("start_point", {}).get("row", -1)
    return f"{path.get('verbatim_path', path)}:{row + 1}"


def test_zizmor_catches_a_planted_defect(tmp_path):
    (tmp_path / "bad.yaml").write_text(PLANTED)
    reported = findings(zizmor(tmp_path / "bad.yaml"))
    idents = {f["ident"] for f in reported}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= idents, idents
    assert all("bad.yaml:" in location(f) for f in reported)


def test_zizmor_has_no_finding_at_the_strictest_persona():
    result = zizmor(GITHUB / "workflows", GITHUB / "dependabot.yml")
    reported = [
        f"{f['ident']} ({f['determinations']['severity']}): {location(f)}" for f in findings(result)
    ]
    assert not reported, "zizmor findings (fix them or waive them with a reason in .github/zizmor.yml):\n" + "\n".join(reported)


def test_every_zizmor_waiver_gives_a_reason():
    text = (GITHUB / "zizmor.yml").read_text()
    rules = yaml.safe_load(text)["rules"]
    lines = text.splitlines()
    for rule in rules:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"{rule}:")
        following = lines[index + 1 : index + 4]
        assert any(line.strip().startswith("#") for line in following), f"waiver of {rule} has no reason"


def test_shellcheck_is_clean_on_the_scripts():
    assert SCRIPTS
    result = subprocess.run([tool("shellcheck"), "--severity=style", *map(str, SCRIPTS)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_python_scripts_compile():
    for script in sorted((GITHUB / "scripts").glob("*.py")):
        subprocess.run([sys.executable, "-m", "py_compile", str(script)], check=True)


def test_actionlint_knows_exactly_the_registered_scale_set_labels():
    import re

    names = set()
    for manifest in (REPO / "infrastructure" / "configs" / "base" / "arc-runners").glob("*.yaml"):
        names |= set(re.findall(r"runnerScaleSetName:\s*(\S+)", manifest.read_text()))
    expected = {n.replace("${environment}", env) for n in names for env in ("dev", "staging", "prod")}
    labels = set(yaml.safe_load((GITHUB / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"])
    assert labels == expected
