"""The status checks docs/ci-cd.md tells an administrator to require are the names GitHub
reports for a pull request, composed from the parsed workflows as GitHub composes them: the
job's `name:` (expressions evaluated) or its id; a matrix job without matrix values in its name
gets ` (v1, v2)`; a job calling a reusable workflow reports `<caller> / <called job>`. A
required check that no job reports keeps every pull request waiting forever."""

import itertools
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ghasim import condition, substitute, to_str  # noqa: E402
from workflows import REPO, WORKFLOWS_DIR  # noqa: E402

sys.path.pop(0)

DOC = REPO / "docs" / "ci-cd.md"
PR_CONTEXT = {
    "github": {
        "event_name": "pull_request", "repository": "example-org/task-platform", "ref": "refs/pull/1/merge",
        "event": {"pull_request": {"number": 1, "head": {"repo": {"full_name": "example-org/task-platform"}}}},
    },
    "vars": {}, "inputs": {}, "needs": {}, "env": {}, "secrets": {}, "steps": {},
}


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS_DIR / name).read_text())


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {t: None for t in on}
    return on or {}


def matrix_rows(job: dict) -> list[dict]:
    matrix = ((job.get("strategy") or {}).get("matrix")) or {}
    assert not {"include", "exclude"} & set(matrix), "extend matrix_rows for include/exclude"
    keys = list(matrix)
    return [dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys))] or [{}]


def job_check_names(workflow: dict, context: dict) -> dict[str, str]:
    """check name -> job id, for the jobs of `workflow` that run in `context`."""
    names, ran = {}, set()
    for job_id, job in (workflow.get("jobs") or {}).items():
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        status_aware = re.search(r"\b(always|failure|cancelled)\s*\(", str(job.get("if", "")))
        if any(need not in ran for need in needs) and not status_aware:
            continue  # a job whose needs were skipped is skipped too
        if not condition(job.get("if"), context, {"failed": False}):
            continue
        ran.add(job_id)
        for row in matrix_rows(job):
            ctx = {**context, "matrix": row}
            template = job.get("name")
            display = to_str(substitute(template, ctx)) if template else job_id
            if row and not (template and "matrix." in template):
                display = f"{display} ({', '.join(to_str(v) for v in row.values())})"
            uses = job.get("uses", "")
            if uses.startswith(("./.github/workflows/", "$/.github/workflows/")):
                called = load(Path(uses).name)
                inputs = {k: substitute(v, ctx) for k, v in (job.get("with") or {}).items()}
                for called_name, called_id in job_check_names(called, {**context, "inputs": inputs}).items():
                    names[f"{display} / {called_name}"] = f"{job_id}/{called_id}"
            else:
                names[display] = job_id
    return names


def runs_on_every_pull_request(workflow: dict) -> bool:
    pull_request = triggers(workflow).get("pull_request", False)
    if pull_request is False:
        return False
    filters = pull_request or {}
    return not ({"paths", "paths-ignore", "branches-ignore"} & set(filters)) and filters.get("branches") in (None, ["main"])


def documented(marker: str) -> list[str]:
    """Check names in the first column of the table that follows `<!-- marker -->`."""
    text = DOC.read_text()
    start = text.index(f"<!-- {marker} -->")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cell = line.split("|")[1].strip()
        if set(cell) <= {"-", " "} or cell == "check":
            continue
        match = re.fullmatch(r"`([^`]+)`", cell)
        assert match, f"docs/ci-cd.md {marker}: first cell {cell!r} is not one `check name`"
        rows.append(match.group(1))
    assert rows, f"docs/ci-cd.md has no table after <!-- {marker} -->"
    return rows


def reported_on_every_pull_request() -> dict[str, str]:
    names = {}
    for path in sorted(WORKFLOWS_DIR.glob("*.y*ml")):
        workflow = yaml.safe_load(path.read_text())
        if runs_on_every_pull_request(workflow):
            names.update({name: f"{path.name}:{job}" for name, job in job_check_names(workflow, PR_CONTEXT).items()})
    return names


def test_the_composition_follows_github():
    caller = load("opentofu.yaml")
    names = job_check_names(caller, PR_CONTEXT)
    # plan: matrix over a reusable workflow whose job is named "${{ inputs.mode }} ${{ inputs.environment }}".
    assert "plan (dev) / plan dev" in names and "plan (prod) / plan prod" in names
    assert not any(name.startswith("apply-") for name in names), "apply jobs do not run on pull requests"


def test_every_required_check_is_reported_on_every_pull_request():
    required = documented("required-checks")
    reported = reported_on_every_pull_request()
    missing = [name for name in required if name not in reported]
    assert not missing, f"required in docs/ci-cd.md but no job reports them on every pull request: {missing}; reported: {sorted(reported)}"


def test_every_check_ci_reports_on_a_pull_request_is_required():
    ci = yaml.safe_load((WORKFLOWS_DIR / "ci.yaml").read_text())
    assert runs_on_every_pull_request(ci)
    assert sorted(job_check_names(ci, PR_CONTEXT)) == sorted(documented("required-checks"))


def test_path_filtered_checks_are_documented_by_their_real_names_and_not_required():
    optional = documented("path-filtered-checks")
    names = {}
    for path in sorted(WORKFLOWS_DIR.glob("*.y*ml")):
        workflow = yaml.safe_load(path.read_text())
        if "pull_request" in triggers(workflow) and not runs_on_every_pull_request(workflow):
            names.update(job_check_names(workflow, PR_CONTEXT))
    assert sorted(optional) == sorted(names)
    assert not set(optional) & set(documented("required-checks"))


RULESET = REPO / ".github" / "rulesets" / "main.json"
GITHUB_ACTIONS_APP_ID = 15368  # the integration that reports Actions job checks


def ruleset_rules() -> dict[str, dict]:
    import json

    ruleset = json.loads(RULESET.read_text())
    assert ruleset["target"] == "branch" and ruleset["enforcement"] == "active"
    assert ruleset["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"]
    assert ruleset["bypass_actors"] == [], "a bypass cannot be limited to a path: nobody bypasses"
    return {rule["type"]: rule.get("parameters", {}) for rule in ruleset["rules"]}


def test_the_ruleset_requires_exactly_the_documented_checks_from_github_actions():
    checks = ruleset_rules()["required_status_checks"]["required_status_checks"]
    assert [c["context"] for c in checks] == documented("required-checks")
    assert {c.get("integration_id") for c in checks} == {GITHUB_ACTIONS_APP_ID}


def test_reviews_come_from_code_owners_only_so_the_unowned_dev_release_file_merges_on_checks():
    pull_request = ruleset_rules()["pull_request"]
    assert pull_request["require_code_owner_review"] is True
    assert pull_request["required_approving_review_count"] == 0, (
        "any required approval count also holds the release bot's dev pull request"
    )


def test_the_only_merge_method_is_the_one_auto_merge_asks_for():
    methods = ruleset_rules()["pull_request"]["allowed_merge_methods"]
    script = (REPO / ".github" / "scripts" / "auto_merge.py").read_text()
    asked = set(re.findall(r"mergeMethod:\s*(\w+)", script))
    assert [m.upper() for m in methods] == sorted(asked) == ["SQUASH"]
