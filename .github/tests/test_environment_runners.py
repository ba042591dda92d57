"""A job that acts on one environment runs on that environment's runners.

Runner scale sets are per cluster (`arc-<env>-linux`, `arc-<env>-linux-docker`): a job that
deploys or promotes to an environment must land on that environment's scale set, chosen by a
repository variable (`RUNNER_DEV`, `RUNNER_STAGING`, `RUNNER_PROD`; `_DOCKER` for Docker jobs)
so that switching needs no workflow edit, with GitHub-hosted as the fallback, and never on
another environment's runners (dev's run pull requests' code). CI without an environment stays
on `vars.RUNNER` / `vars.RUNNER_DOCKER` (test_workflows.py).

Which environment a job acts on is read from what GitHub would run: the job's `environment:`
name and its job-level `env`, evaluated for every way the workflow can start (each choice of a
dispatch input, and every other trigger with no inputs), and the `apps/<env>/` paths its steps
write. The job's `runs-on` is then evaluated with GitHub's expression rules (ghasim) against
repository variables that each hold a different label.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ghasim import evaluate  # noqa: E402
from workflows import REPO, Workflow, load_workflows, steps  # noqa: E402

ENVIRONMENTS = ("dev", "staging", "prod")
# The OpenTofu jobs run on vars.TOFU_RUNNER by design (decision 0055): never on runners inside
# the clusters they change.
OWN_RUNNER_WORKFLOWS = {"opentofu.yaml", "opentofu-env.yaml"}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
RUNNER_VARIABLES = ["RUNNER", "RUNNER_DOCKER", "TOFU_RUNNER"] + [
    f"RUNNER_{env.upper()}{suffix}" for env in ENVIRONMENTS for suffix in ("", "_DOCKER")
]


def _value(template, context: dict):
    """A workflow value as GitHub computes it: a lone expression keeps its type, anything else
    is a string with each expression substituted."""
    if not isinstance(template, str):
        return template
    whole = EXPRESSION.fullmatch(template.strip())
    if whole:
        return evaluate(whole.group(1), context)
    return EXPRESSION.sub(lambda m: str(evaluate(m.group(1), context) or ""), template)


def start_contexts(wf: Workflow) -> list[dict]:
    """One expression context per way the workflow starts."""
    contexts = []
    for event, config in wf.triggers.items():
        if event in ("workflow_dispatch", "workflow_call"):
            inputs = (config or {}).get("inputs") or {}
            choices = {name: spec.get("options") if spec.get("type") == "choice" else [spec.get("default")]
                       for name, spec in inputs.items()}
            for combination in itertools.product(*choices.values()):
                contexts.append({"event": event, "inputs": dict(zip(choices, combination))})
        else:
            contexts.append({"event": event, "inputs": {}})
    return contexts


def _context(start: dict, variables: dict) -> dict:
    return {"inputs": start["inputs"], "vars": variables, "github": {"event_name": start["event"]},
            "needs": {}, "matrix": {}, "strategy": {}}


def targets(job: dict, start: dict) -> set[str]:
    """The environments `job` acts on when the workflow starts as `start`."""
    context = _context(start, {})
    found = set()
    environment = job.get("environment")
    name = _value(environment.get("name") if isinstance(environment, dict) else environment, context)
    if name in ENVIRONMENTS:
        found.add(name)
    job_env = {key: _value(value, context) for key, value in (job.get("env") or {}).items()}
    found |= {value for value in job_env.values() if value in ENVIRONMENTS}
    # The files its steps write: apps/<env>/... with the job's env filled in (shell $VAR and
    # ${{ env.VAR }} alike); a path built from a step's own variable is a source it reads.
    text = yaml.safe_dump(steps(job))
    for key, value in job_env.items():
        text = re.sub(r"\$\{\{\s*env\." + re.escape(key) + r"\s*\}\}|\$\{?" + re.escape(key) + r"\b\}?", str(value), text)
    found |= set(re.findall(r"apps/(" + "|".join(ENVIRONMENTS) + r")/", text))
    return found


def runner_of(job: dict, start: dict, variables: dict):
    return _value(job.get("runs-on"), _context(start, variables))


def environment_jobs():
    for wf in load_workflows():
        if wf.name in OWN_RUNNER_WORKFLOWS:
            continue
        for job_id, job in wf.jobs.items():
            if "uses" in job:
                continue
            for start in start_contexts(wf):
                acted_on = targets(job, start)
                if acted_on:
                    label = f"{wf.name}:{job_id}:{start['event']}:{','.join(f'{k}={v}' for k, v in start['inputs'].items())}"
                    yield pytest.param(job, start, acted_on, id=label)


def runner_problems(job: dict, start: dict, acted_on: set[str]) -> list[str]:
    if len(acted_on) != 1:
        return [f"acts on several environments at once: {sorted(acted_on)}"]
    (environment,) = acted_on
    wanted = f"RUNNER_{environment.upper()}" + ("" if "container" in job else "_DOCKER")
    labels = {name: f"label-of-{name}" for name in RUNNER_VARIABLES}
    problems = []
    chosen = runner_of(job, start, labels)
    if chosen != labels[wanted]:
        problems.append(f"acts on {environment} but runs on {chosen!r}, not vars.{wanted}")
    fallback = runner_of(job, start, {k: v for k, v in labels.items() if k != wanted})
    if fallback != "ubuntu-latest":
        problems.append(f"with vars.{wanted} unset it runs on {fallback!r}, not GitHub-hosted")
    return problems


def test_the_deploying_jobs_are_found():
    """The rule below must see the jobs that act on an environment (else it checks nothing)."""
    seen = set()
    for param in environment_jobs():
        _, _, acted_on = param.values
        workflow, job_id = param.id.split(":")[:2]
        seen |= {(workflow, job_id, env) for env in acted_on}
    assert {("release.yaml", "dev", "dev"), ("promote.yaml", "promote", "staging"),
            ("promote.yaml", "promote", "prod")} <= seen


@pytest.mark.parametrize(("job", "start", "acted_on"), list(environment_jobs()))
def test_a_job_acting_on_an_environment_runs_on_its_runner_variable(job, start, acted_on):
    assert runner_problems(job, start, acted_on) == []


@pytest.mark.parametrize(
    ("runs_on", "to", "broken"),
    [
        ("${{ (inputs.to == 'prod' && vars.RUNNER_PROD) || (inputs.to != 'prod' && vars.RUNNER_STAGING) || 'ubuntu-latest' }}", "prod", False),
        ("${{ vars.RUNNER || 'ubuntu-latest' }}", "prod", True),  # prod promotion on dev's runners
        ("${{ vars.RUNNER_PROD || vars.RUNNER || 'ubuntu-latest' }}", "prod", True),  # falls back to dev's
        ("${{ vars.RUNNER_STAGING || 'ubuntu-latest' }}", "prod", True),
        ("arc-prod-linux", "prod", True),  # a label in the file: switching needs a commit
    ],
)
def test_the_rule_rejects_a_prod_job_on_another_runner(runs_on, to, broken):
    job = {"runs-on": runs_on, "container": {"image": "x"}, "environment": "release", "env": {"TARGET": "${{ inputs.to }}"},
           "steps": [{"run": 'promote.py copy "apps/$source/release.yaml" "apps/$TARGET/release.yaml"'}]}
    start = {"event": "workflow_dispatch", "inputs": {"to": to, "runner": ""}}
    acted_on = targets(job, start)
    assert acted_on == {"prod"}
    assert bool(runner_problems(job, start, acted_on)) == broken


def test_actionlint_knows_every_environments_runner_labels():
    labels = set(yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"])
    assert {f"arc-{env}-linux{suffix}" for env in ENVIRONMENTS for suffix in ("", "-docker")} <= labels
