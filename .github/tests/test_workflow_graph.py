"""Who may read what: every job, as GitHub would instantiate it (reusable workflows expanded for
each caller and matrix row, `environment:` expressions evaluated), with the secrets it reads,
the environment it runs in, its permissions and the events that start it. The secrets that
exist are the ones docs/ci-cd.md tells an administrator to create, per environment."""

import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ghasim import condition, substitute, to_str  # noqa: E402
from workflows import WORKFLOWS_DIR, configured_secrets  # noqa: E402

sys.path.pop(0)

SECRET = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")
BUILT_IN = {"GITHUB_TOKEN"}


@dataclass(frozen=True)
class JobInstance:
    workflow: str
    job: str
    environment: str | None
    secrets: frozenset
    permissions: tuple
    events: frozenset

    def __str__(self) -> str:
        return f"{self.workflow}:{self.job}[{self.environment}]"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS_DIR / name).read_text())


def events(workflow: dict) -> set[str]:
    on = workflow.get("on", workflow.get(True))
    return {on} if isinstance(on, str) else set(on)


def rows(job: dict) -> list[dict]:
    matrix = ((job.get("strategy") or {}).get("matrix")) or {}
    keys = list(matrix)
    return [dict(zip(keys, v)) for v in itertools.product(*(matrix[k] for k in keys))] or [{}]


def active_events(workflow: dict) -> dict[str, set[str]]:
    """job id -> the events of the workflow on which the job runs (its `if:` and its needs)."""
    active = {job_id: set() for job_id in workflow["jobs"]}
    for event in events(workflow):
        ran = set()
        context = {"github": {"event_name": event, "event": {}, "repository": "example-org/task-platform"},
                   "inputs": {}, "vars": {}, "matrix": {}, "needs": {}, "env": {}, "secrets": {}, "steps": {}}
        for job_id, job in workflow["jobs"].items():
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            status_aware = re.search(r"\b(always|failure|cancelled)\s*\(", str(job.get("if", "")))
            if any(n not in ran for n in needs) and not status_aware:
                continue
            if condition(job.get("if"), context, {"failed": False}):
                ran.add(job_id)
                active[job_id].add(event)
    return active


def instances() -> list[JobInstance]:
    found = []
    for path in sorted(WORKFLOWS_DIR.glob("*.y*ml")):
        workflow = yaml.safe_load(path.read_text())
        if "workflow_call" in events(workflow):
            continue  # expanded through its callers
        active = active_events(workflow)
        for job_id, job in workflow["jobs"].items():
            for row in rows(job):
                context = {"matrix": row, "inputs": {}, "vars": {}, "github": {}, "secrets": {}, "env": {}}
                if "uses" in job:
                    called_name = Path(job["uses"]).name
                    called = load(called_name)
                    inputs = {k: substitute(v, context) for k, v in (job.get("with") or {}).items()}
                    for called_id, called_job in called["jobs"].items():
                        found.append(instance(f"{path.name}:{job_id}->{called_name}", called_id, called_job,
                                              {**context, "inputs": inputs}, active[job_id], job.get("permissions")))
                else:
                    found.append(instance(path.name, job_id, job, context, active[job_id], None))
    return found


def instance(workflow, job_id, job, context, triggered_by, caller_permissions) -> JobInstance:
    environment = job.get("environment")
    if isinstance(environment, dict):
        environment = environment.get("name")
    if environment is not None:
        environment = to_str(substitute(environment, context))
    names = frozenset(SECRET.findall(yaml.safe_dump(job))) - BUILT_IN
    permissions = job.get("permissions") or {}
    if caller_permissions is not None:  # a called job gets at most what its caller was granted
        permissions = {k: v for k, v in permissions.items() if (caller_permissions or {}).get(k) in (v, "write")}
    return JobInstance(workflow, job_id, environment, names, tuple(sorted(permissions.items())), frozenset(triggered_by))


INSTANCES = instances()
CONFIGURED = configured_secrets()
# (secret, environment) pairs a job reads where the environment deliberately holds no such
# secret, so the expression is empty there; each with the reason.
ABSENT_BY_DESIGN = {
    (secret, f"{env}-plan"): "plans run without the apply-only secrets; one job file serves plan and apply"
    for env in ("dev", "staging", "prod")
    for secret in ("FLUX_GITHUB_APP_PRIVATE_KEY", "FLUX_NOTIFICATIONS_SLACK_WEBHOOK")
}


def test_the_graph_is_complete():
    names = {str(i) for i in INSTANCES}
    assert "release.yaml:dev[release]" in names and "promote.yaml:promote[release]" in names
    for env in ("dev", "staging", "prod"):
        assert f"opentofu.yaml:apply-{env}->opentofu-env.yaml:tofu[{env}]" in names
        assert f"opentofu.yaml:plan->opentofu-env.yaml:tofu[{env}-plan]" in names


@pytest.mark.parametrize("job", INSTANCES, ids=str)
def test_every_secret_a_job_reads_exists_in_its_environment(job):
    available = CONFIGURED.get("", set()) | CONFIGURED.get(job.environment or "", set())
    missing = sorted(s for s in job.secrets - available if (s, job.environment) not in ABSENT_BY_DESIGN)
    assert not missing, (
        f"{job} reads {missing}, which docs/ci-cd.md configures only in "
        f"{sorted(e for e, names in CONFIGURED.items() if set(missing) & names) or 'no environment'}: "
        "GitHub would hand the job an empty string"
    )


def test_every_configured_secret_is_read_by_a_job_of_its_environment():
    for environment, names in CONFIGURED.items():
        for name in names:
            assert any(name in j.secrets and (j.environment or "") == environment for j in INSTANCES), (
                f"{name} in {environment or 'the repository'} is read by no job there"
            )


def test_the_release_bot_key_is_read_only_in_the_release_environment_and_only_from_main_events():
    readers = [j for j in INSTANCES if "RELEASE_BOT_PRIVATE_KEY" in j.secrets]
    assert {str(j) for j in readers} == {"release.yaml:dev[release]", "promote.yaml:promote[release]"}
    for job in readers:
        assert job.environment == "release"
        assert not job.events & {"pull_request", "pull_request_target", "workflow_run", "issue_comment"}, (
            f"{job}: an event from a pull request must never reach the bot's key"
        )


@pytest.mark.parametrize("job", [j for j in INSTANCES if j.environment == "release"], ids=str)
def test_release_jobs_write_nothing_with_github_token(job):
    writes = {k for k, v in job.permissions if v == "write"} - {"id-token"}
    assert not writes, f"{job}: repository writes go through the bot's token only, found {writes}"


@pytest.mark.parametrize("job", [j for j in INSTANCES if "pull_request" in j.events], ids=str)
def test_pull_request_jobs_touch_no_release_or_apply_environment(job):
    assert job.environment in (None, "dev-plan", "staging-plan", "prod-plan"), (
        f"{job}: a pull request may only plan (read-only roles)"
    )
