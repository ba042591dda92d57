"""The OpenTofu workflows as GitHub would instantiate them: for each event, which jobs run, in
which environment, with which role and session length, in which concurrency group, on which
runner. Expressions are evaluated with the workflow tests' GitHub expression evaluator
(.github/tests/ghasim.py), not matched as text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENVS, stack  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
sys.path.insert(0, str(REPO / ".github" / "tests"))
from ghasim import condition, substitute  # noqa: E402

sys.path.pop(0)

CALLER = yaml.safe_load((WORKFLOWS / "opentofu.yaml").read_text())
CALLED = yaml.safe_load((WORKFLOWS / "opentofu-env.yaml").read_text())
TOFU = CALLED["jobs"]["tofu"]


def _context(event: str, run_id: int, pr: int | None = None, ref: str = "refs/heads/main", inputs=None, matrix=None):
    github = {"event_name": event, "run_id": run_id, "ref": ref, "repository": "example-org/task-platform", "event": {}}
    if pr is not None:
        github["event"] = {"pull_request": {"number": pr, "head": {"repo": {"full_name": "example-org/task-platform"}}}}
    return {"github": github, "inputs": inputs or {}, "matrix": matrix or {}, "vars": {
        "AWS_APPLY_ROLE_ARN": "apply-role", "AWS_PLAN_ROLE_ARN": "plan-role", "AWS_REGION": "eu-west-1",
        "TOFU_RUNNER": "tofu-static-egress", "RUNNER": "arc-linux",
    }, "secrets": {}, "env": {}, "needs": {}, "steps": {}}


def _group(ctx) -> tuple[str, bool]:
    concurrency = CALLER["concurrency"]
    return substitute(concurrency["group"], ctx), substitute(concurrency["cancel-in-progress"], ctx)


def test_pushes_never_share_a_concurrency_group():
    """One group per ref: a pending prod approval holds the next dev apply, and a third push
    cancels the run waiting in the group (GitHub keeps one pending run per group)."""
    first, cancel_first = _group(_context("push", 101))
    second, cancel_second = _group(_context("push", 102))
    third, _ = _group(_context("push", 103))
    assert len({first, second, third}) == 3
    assert cancel_first is False and cancel_second is False


def test_pull_request_runs_supersede_each_other_per_pull_request():
    a, cancel = _group(_context("pull_request", 201, pr=7, ref="refs/pull/7/merge"))
    b, _ = _group(_context("pull_request", 202, pr=7, ref="refs/pull/7/merge"))
    c, _ = _group(_context("pull_request", 203, pr=8, ref="refs/pull/8/merge"))
    assert a == b != c
    assert cancel is True
    push, _ = _group(_context("push", 201))
    assert push != a


def test_no_job_level_concurrency_holds_applies_back():
    for job_id, job in {**CALLER["jobs"], **CALLED["jobs"]}.items():
        assert "concurrency" not in job, f"{job_id}: a job-level group would again queue or cancel applies"


def _apply_chain():
    return {job_id: job for job_id, job in CALLER["jobs"].items() if job_id.startswith("apply-")}


def test_applies_run_on_push_in_order_and_plans_on_pull_requests():
    chain = _apply_chain()
    assert set(chain) == {f"apply-{e}" for e in ENVS}
    assert "needs" not in chain["apply-dev"]
    assert chain["apply-staging"]["needs"] == "apply-dev"
    assert chain["apply-prod"]["needs"] == "apply-staging"
    push = _context("push", 1)
    ok = {"failed": False}
    assert condition(chain["apply-dev"]["if"], push, ok) is True
    assert condition(chain["apply-dev"]["if"], _context("pull_request", 1, pr=3), ok) is False
    plan = CALLER["jobs"]["plan"]
    assert condition(plan["if"], _context("pull_request", 1, pr=3), ok) is True
    assert condition(plan["if"], push, ok) is False


def _instantiate(mode: str, env: str) -> dict:
    ctx = _context("push" if mode == "apply" else "pull_request", 1, pr=None if mode == "apply" else 3, inputs={"mode": mode, "environment": env})
    return {
        "environment": substitute(TOFU["environment"], ctx),
        "runs-on": substitute(TOFU["runs-on"], ctx),
        "role": substitute(next(s for s in TOFU["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))["with"]["role-to-assume"], ctx),
        "duration": substitute(next(s for s in TOFU["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))["with"].get("role-duration-seconds"), ctx),
    }


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("mode", ["plan", "apply"])
def test_each_mode_runs_in_its_environment_with_its_role(mode, env):
    job = _instantiate(mode, env)
    if mode == "apply":
        assert (job["environment"], job["role"]) == (env, "apply-role")
    else:
        assert (job["environment"], job["role"]) == (f"{env}-plan", "plan-role")


@pytest.mark.parametrize("mode", ["plan", "apply"])
def test_the_role_session_outlasts_the_job_within_the_roles_limit(mode):
    job = _instantiate(mode, "dev")
    limit = stack("global").locals["ci_session_seconds"]
    for name in ("plan_role", "apply_role"):
        assert stack("global").module(name)["max_session_duration"] == "${local.ci_session_seconds}"
    assert job["duration"] is not None, "without role-duration-seconds the session lasts one hour"
    duration = int(job["duration"])
    assert TOFU["timeout-minutes"] * 60 <= duration <= limit


@pytest.mark.parametrize("mode", ["plan", "apply"])
def test_opentofu_jobs_run_on_the_opentofu_runner_not_the_cluster_scale_sets(mode):
    job = _instantiate(mode, "prod")
    assert job["runs-on"] == "tofu-static-egress"
    assert "RUNNER" not in TOFU["runs-on"].replace("TOFU_RUNNER", "")


def test_the_flux_key_is_read_only_from_the_environment_and_never_in_a_plan_artifact():
    step = next(s for s in TOFU["steps"] if s.get("name", "").startswith("tofu "))
    assert step["env"]["TF_VAR_flux_github_app_private_key"] == "${{ secrets.FLUX_GITHUB_APP_PRIVATE_KEY }}"
    assert step["env"]["TF_VAR_flux_notifications_slack_webhook"] == "${{ secrets.FLUX_NOTIFICATIONS_SLACK_WEBHOOK }}"
    assert "FLUX_GIT_TOKEN" not in (WORKFLOWS / "opentofu-env.yaml").read_text()
    upload = next(s for s in TOFU["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"].endswith("/tofu/plan.md"), "only the rendered summary leaves the job"
