"""Structural rules every workflow keeps: least privilege, pinned actions, runner choice from
a variable with a GitHub-hosted fallback, timeouts, and the glue with the rest of the repo."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_environment_runners import start_contexts, targets  # noqa: E402
from workflows import (  # noqa: E402
    LOCAL_USES, PINNED_USES, REPO, VERSION_COMMENT, Workflow, called_workflow, load_workflows, steps,
)

WORKFLOWS = load_workflows()
EXPECTED = {"ci.yaml", "release.yaml", "promote.yaml", "opentofu.yaml", "opentofu-env.yaml"}
ENVIRONMENTS = {"dev", "staging", "prod", "dev-plan", "staging-plan", "prod-plan", "release"}
CI_IMAGE = re.compile(r"^docker\.io/library/rust:(\d+\.\d+\.\d+)-bookworm@sha256:[0-9a-f]{64}$")
# runs-on: a variable or a workflow_dispatch input first, a GitHub-hosted label last.
RUNS_ON = re.compile(
    r"^\$\{\{\s*(?:inputs\.runner\s*\|\|\s*)?vars\.(RUNNER|RUNNER_DOCKER)\s*\|\|\s*'ubuntu-latest'\s*\}\}$"
)


# Jobs that must not depend on the runner choice, with the reason.
RUNNER_INDEPENDENT = {
    ("runner-health.yaml", "queue"): "watches the self-hosted scale sets, so it must run when they do not",
}
# Jobs on a runner of their own, chosen by a dedicated variable, with the reason.
DEDICATED_RUNNER = {
    ("opentofu-env.yaml", "tofu"): (
        "${{ vars.TOFU_RUNNER }}",
        "GitHub-hosted larger runners with the static egress the EKS public endpoint admits; never "
        "the ARC spot nodes inside the clusters these jobs change",
    ),
}


def all_jobs():
    for wf in WORKFLOWS:
        for job_id, job in wf.jobs.items():
            yield pytest.param(wf, job_id, job, id=f"{wf.name}:{job_id}")


def runner_jobs():
    """Jobs that run on a runner themselves (not callers of a reusable workflow)."""
    for wf in WORKFLOWS:
        for job_id, job in wf.jobs.items():
            if "uses" not in job:
                yield pytest.param(wf, job_id, job, id=f"{wf.name}:{job_id}")


def test_the_expected_workflows_exist():
    assert {wf.name for wf in WORKFLOWS} >= EXPECTED


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda w: w.name)
def test_workflow_denies_everything_by_default(wf):
    assert wf.data.get("permissions") == {}, f"{wf.name}: top-level `permissions: {{}}` is required"


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda w: w.name)
def test_no_privileged_triggers(wf):
    # pull_request_target and workflow_run run with secrets on code from forks.
    assert not {"pull_request_target", "workflow_run"} & set(wf.triggers)


@pytest.mark.parametrize("wf", [w for w in WORKFLOWS if "workflow_call" not in w.triggers], ids=lambda w: w.name)
def test_top_level_workflows_have_a_concurrency_group(wf):
    assert wf.data.get("concurrency", {}).get("group"), f"{wf.name} has no concurrency group"


@pytest.mark.parametrize(("wf", "job_id", "job"), list(all_jobs()))
def test_every_job_declares_its_permissions(wf, job_id, job):
    assert "permissions" in job, f"{wf.name}:{job_id} must declare `permissions:`"
    assert job["permissions"] not in ("write-all", "read-all")


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_every_job_has_a_timeout(wf, job_id, job):
    timeout = job.get("timeout-minutes")
    assert isinstance(timeout, int) and 0 < timeout <= 90, f"{wf.name}:{job_id} timeout {timeout!r}"


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_runs_on_comes_from_a_variable_with_a_github_hosted_fallback(wf, job_id, job):
    runs_on = job.get("runs-on", "")
    if (wf.name, job_id) in RUNNER_INDEPENDENT:
        assert runs_on == "ubuntu-latest"
        return
    if (wf.name, job_id) in DEDICATED_RUNNER and runs_on == DEDICATED_RUNNER[(wf.name, job_id)][0]:
        return
    if any(targets(job, start) for start in start_contexts(wf)):
        return  # on its environment's runner variable: test_environment_runners.py
    match = RUNS_ON.match(str(runs_on))
    assert match, f"{wf.name}:{job_id} runs-on {runs_on!r}"
    if "inputs.runner" in runs_on:
        dispatch = wf.triggers.get("workflow_dispatch") or {}
        assert "runner" in (dispatch.get("inputs") or {}), f"{wf.name} has no `runner` input"


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_jobs_on_the_general_scale_set_run_in_the_pinned_ci_image(wf, job_id, job):
    # ARC's Kubernetes mode (arc-linux) runs jobs in a job container; the same image on
    # GitHub-hosted runners gives the same toolchain everywhere. Docker-scale-set jobs need none.
    if (wf.name, job_id) in RUNNER_INDEPENDENT:
        return
    if "vars.RUNNER_DOCKER" in job["runs-on"]:
        assert "container" not in job, f"{wf.name}:{job_id}: Docker jobs run on the runner itself"
        return
    image = (job.get("container") or {}).get("image", "")
    assert CI_IMAGE.match(image), f"{wf.name}:{job_id} container image {image!r}"


def test_the_ci_image_is_the_same_everywhere_and_matches_the_dockerfile_builder():
    images = {
        job["container"]["image"] for wf in WORKFLOWS for job in wf.jobs.values() if "container" in job
    }
    assert len(images) == 1, f"one CI image, found {images}"
    dockerfile = (REPO / "crates" / "task-api" / "Dockerfile").read_text()
    (image,) = images
    assert f"FROM {image} AS chef" in dockerfile, "CI and the image build must use one toolchain"


def test_ci_toolchain_satisfies_the_workspace_rust_version():
    (image,) = {job["container"]["image"] for wf in WORKFLOWS for job in wf.jobs.values() if "container" in job}
    toolchain = tuple(int(x) for x in CI_IMAGE.match(image).group(1).split("."))
    declared = re.search(r'rust-version\s*=\s*"(\d+)\.(\d+)', (REPO / "Cargo.toml").read_text())
    assert declared, "workspace Cargo.toml declares no rust-version"
    assert toolchain[:2] >= (int(declared.group(1)), int(declared.group(2)))


def uses_lines():
    for wf in WORKFLOWS:
        for number, line in enumerate(wf.text.splitlines(), 1):
            stripped = line.strip().removeprefix("- ")
            if stripped.startswith("uses:"):
                yield pytest.param(wf, line, id=f"{wf.name}:{number}")


@pytest.mark.parametrize(("wf", "line"), list(uses_lines()))
def test_every_action_is_pinned_to_a_full_commit_with_its_version(wf, line):
    target = line.split("uses:", 1)[1].split("#", 1)[0].strip()
    if LOCAL_USES.match(target):
        return
    assert PINNED_USES.match(target), f"{wf.name}: `{target}` is not pinned to a 40-hex commit"
    assert VERSION_COMMENT.search(line), f"{wf.name}: `{target}` lacks its `# vX.Y.Z` comment"


def test_one_action_one_commit():
    seen: dict[str, set[str]] = {}
    for wf in WORKFLOWS:
        for match in re.finditer(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})\s*#\s*(v[\d.]+)", wf.text):
            seen.setdefault(match.group(1), set()).add(f"{match.group(2)} {match.group(3)}")
    drift = {action: pins for action, pins in seen.items() if len(pins) > 1}
    assert not drift, f"the same action pinned differently: {drift}"


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_checkout_never_persists_credentials(wf, job_id, job):
    for step in steps(job):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, f"{wf.name}:{job_id}"


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_run_scripts_take_values_through_env_not_interpolation(wf, job_id, job):
    for step in steps(job):
        script = step.get("run", "")
        assert "${{" not in script, f"{wf.name}:{job_id} step {step.get('name')!r} interpolates into a script"


def job_needs_oidc(job: dict) -> bool:
    for step in steps(job):
        uses = step.get("uses", "")
        if uses.startswith("aws-actions/configure-aws-credentials@"):
            return True
        if "cosign sign" in step.get("run", "") or "cosign attest" in step.get("run", ""):
            return True
    called = called_workflow(job)
    return bool(called and any(job_needs_oidc(j) for j in called.jobs.values()))


@pytest.mark.parametrize(("wf", "job_id", "job"), list(all_jobs()))
def test_id_token_is_granted_exactly_where_a_cloud_session_or_signature_needs_it(wf, job_id, job):
    granted = (job.get("permissions") or {}).get("id-token") == "write"
    assert granted == job_needs_oidc(job), f"{wf.name}:{job_id}: id-token {granted}, needed {job_needs_oidc(job)}"


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_cloud_jobs_run_in_a_known_github_environment(wf, job_id, job):
    if not job_needs_oidc(job):
        return
    environment = job.get("environment")
    assert environment, f"{wf.name}:{job_id}: an OIDC job must run in a GitHub environment (the role trusts only that)"
    if "${{" not in str(environment):
        assert environment in ENVIRONMENTS


@pytest.mark.parametrize(("wf", "job_id", "job"), list(runner_jobs()))
def test_aws_roles_come_from_the_environment_variables(wf, job_id, job):
    for step in steps(job):
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            role = step["with"]["role-to-assume"]
            assert re.fullmatch(r"\$\{\{.*vars\.AWS_(PLAN|APPLY|RELEASE)_ROLE_ARN.*\}\}", role), role
            assert "aws-access-key-id" not in step["with"], "no long-lived keys"


def by_name(name: str) -> Workflow:
    return next(wf for wf in WORKFLOWS if wf.name == name)


def ci_test_function(name: str) -> str:
    text = (REPO / ".ci" / "test").read_text()
    match = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}", text, re.MULTILINE | re.DOTALL)
    assert match, f".ci/test has no {name}()"
    return match.group(1)


def test_ci_rust_job_runs_exactly_the_cargo_commands_of_the_test_command():
    expected = [line.strip() for line in ci_test_function("run_rust").splitlines() if line.strip().startswith("cargo ")]
    assert expected, ".ci/test run_rust runs no cargo command"
    job = by_name("ci.yaml").jobs["rust"]
    actual = [step["run"].strip() for step in steps(job) if step.get("run", "").strip().startswith("cargo ")]
    assert actual == expected


def rds_major_versions() -> set[str]:
    found = set()
    for tfvars in (REPO / "opentofu" / "environments").glob("*/database.tfvars"):
        match = re.search(r'^engine_version\s*=\s*"(\d+)(?:\.\d+)*"', tfvars.read_text(), re.MULTILINE)
        assert match, f"{tfvars}: no engine_version"
        found.add(match.group(1))
    return found


def test_ci_rust_job_tests_against_the_postgresql_major_version_rds_runs():
    job = by_name("ci.yaml").jobs["rust"]
    image = job["services"]["postgres"]["image"]
    match = re.fullmatch(r"docker\.io/library/postgres:(\d+)(?:[.-][\w.-]+)?@sha256:[0-9a-f]{64}", image)
    assert match, image
    assert {match.group(1)} == rds_major_versions(), f"CI tests on PostgreSQL {match.group(1)}, RDS runs {rds_major_versions()}"
    scripts = "\n".join(step.get("run", "") for step in steps(job))
    assert "TEST_POSTGRES_URL=" in scripts and "TEST_POSTGRES_URL" in ci_test_function("run_rust")


def test_ci_platform_job_runs_the_test_command_itself():
    job = by_name("ci.yaml").jobs["platform"]
    assert any(step.get("run", "").strip().splitlines()[-1:] == [".ci/test platform"] for step in steps(job))
    checkout = next(s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"].get("fetch-depth") == 0, "the release checks read the full history"
    assert "platform)" in (REPO / ".ci" / "test").read_text()


def test_ci_audits_dependencies_with_the_policy_in_deny_toml():
    job = by_name("ci.yaml").jobs["audit"]
    assert any("cargo deny --locked check" in step.get("run", "") for step in steps(job))
    assert (REPO / "deny.toml").is_file()


def test_ci_runs_on_pull_requests_and_main():
    triggers = by_name("ci.yaml").triggers
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_release_pushes_the_image_under_its_full_sha_and_signs_it_by_digest():
    wf = by_name("release.yaml")
    assert wf.triggers["push"]["branches"] == ["main"]
    job = wf.jobs["image"]
    assert job["environment"] == "release"
    build = next(s for s in steps(job) if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["file"] == "crates/task-api/Dockerfile"
    assert build["with"]["context"] == "."
    assert build["with"]["tags"] == "${{ vars.ECR_REGISTRY }}/task-api:${{ github.sha }}"
    assert build["with"]["push"] is True
    assert build["with"]["sbom"] is True and "mode=max" in build["with"]["provenance"]
    sign = next(s for s in steps(job) if "cosign sign" in s.get("run", ""))
    assert sign["env"]["IMAGE"].endswith("/task-api@${{ steps.image.outputs.digest }}")
    assert "--key" not in sign["run"], "keyless signing only"
    # What the job does on a first run and on re-runs: test_release_jobs.py runs it.


def test_release_builds_the_chart_from_its_directory():
    # Publishing only new versions and signing re-runs: test_release_jobs.py runs the job.
    assert by_name("release.yaml").data["env"]["CHART_DIR"] == "apps/base/task-api/chart"
    assert (REPO / "apps" / "base" / "task-api" / "chart" / "Chart.yaml").is_file()


def test_release_updates_dev_through_an_auto_merged_pull_request():
    job = by_name("release.yaml").jobs["dev"]
    assert set(job["needs"]) == {"image", "chart"}
    scripts = [s.get("run", "") for s in steps(job)]
    assert any("promote.py set apps/dev/release.yaml" in s for s in scripts)
    pr = next(s for s in steps(job) if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert pr["with"]["add-paths"] == "apps/dev/release.yaml"
    assert any("auto_merge.py" in s for s in scripts)
    assert job["permissions"] == {"contents": "read"}, "writes go through the bot token only"


def test_promotion_copies_dev_to_staging_and_staging_to_prod_without_auto_merge():
    wf = by_name("promote.yaml")
    options = wf.triggers["workflow_dispatch"]["inputs"]["to"]["options"]
    assert options == ["staging", "prod"]
    job = wf.jobs["promote"]
    script = "\n".join(s.get("run", "") for s in steps(job))
    assert "staging) source=dev" in script and "prod) source=staging" in script
    assert 'promote.py copy "apps/$source/release.yaml" "apps/$TARGET/release.yaml"' in script
    assert "auto_merge" not in script, "a person merges a promotion"
    pr = next(s for s in steps(job) if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert pr["with"]["add-paths"] == "apps/${{ env.TARGET }}/release.yaml"


def test_release_files_exist_for_every_environment():
    for env in ("dev", "staging", "prod"):
        assert (REPO / "apps" / env / "release.yaml").is_file(), f"apps/{env}/release.yaml is missing"


def test_opentofu_plans_on_pull_requests_and_applies_on_main_in_order():
    wf = by_name("opentofu.yaml")
    assert wf.triggers["pull_request"]["paths"][0] == "opentofu/**"
    assert wf.triggers["push"]["branches"] == ["main"]
    plan = wf.jobs["plan"]
    assert plan["strategy"]["matrix"]["environment"] == ["dev", "staging", "prod"]
    assert plan["with"]["mode"] == "plan"
    chain = [("apply-dev", None, "dev"), ("apply-staging", "apply-dev", "staging"), ("apply-prod", "apply-staging", "prod")]
    for job_id, needs, env in chain:
        job = wf.jobs[job_id]
        assert job.get("needs") == needs if needs else "needs" not in job
        assert job["with"] == {"environment": env, "mode": "apply"}
    comment = wf.jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"}, "the commenting job holds no cloud credentials"


def test_opentofu_environments_and_roles_pair_up():
    job = by_name("opentofu-env.yaml").jobs["tofu"]
    assert job["environment"] == (
        "${{ inputs.mode == 'apply' && inputs.environment || format('{0}-plan', inputs.environment) }}"
    )
    aws = next(s for s in steps(job) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert aws["with"]["role-to-assume"] == (
        "${{ inputs.mode == 'apply' && vars.AWS_APPLY_ROLE_ARN || vars.AWS_PLAN_ROLE_ARN }}"
    )


def test_opentofu_version_satisfies_every_stack():
    version = by_name("opentofu-env.yaml").data["env"]["TOFU_VERSION"]
    major, minor, _ = (int(x) for x in version.split("."))
    constraints = set()
    for versions_tf in (REPO / "opentofu" / "stacks").glob("*/versions.tf"):
        constraints |= set(re.findall(r'required_version\s*=\s*"([^"]+)"', versions_tf.read_text()))
    assert constraints, "no stack declares required_version"
    for constraint in constraints:
        pessimistic = re.fullmatch(r"~>\s*(\d+)\.(\d+)", constraint)
        assert pessimistic, f"unexpected constraint {constraint!r}: extend this test"
        assert major == int(pessimistic.group(1)) and minor >= int(pessimistic.group(2)), constraint


def test_the_plan_apply_script_covers_every_stack_of_every_environment():
    script = (REPO / ".github" / "scripts" / "tofu-env.sh").read_text()
    stacks = re.search(r"^STACKS=\(([^)]*)\)", script, re.MULTILINE).group(1).split()
    on_disk = {p.name for p in (REPO / "opentofu" / "stacks").iterdir() if p.is_dir()} - {"global"}
    assert set(stacks) == on_disk, f"tofu-env.sh stacks {stacks} vs opentofu/stacks {sorted(on_disk)}"
    for env in ("dev", "staging", "prod"):
        for stack in stacks:
            for ext in ("tfbackend", "tfvars"):
                assert (REPO / "opentofu" / "environments" / env / f"{stack}.{ext}").is_file(), f"{env}/{stack}.{ext}"


def test_stacks_are_planned_after_the_stacks_whose_state_they_read():
    script = (REPO / ".github" / "scripts" / "tofu-env.sh").read_text()
    stacks = re.search(r"^STACKS=\(([^)]*)\)", script, re.MULTILINE).group(1).split()
    for position, stack in enumerate(stacks):
        text = "\n".join(p.read_text() for p in (REPO / "opentofu" / "stacks" / stack).glob("*.tf"))
        for upstream in re.findall(r'data\s+"terraform_remote_state"\s+"([\w-]+)"', text):
            if upstream == "global":
                continue  # applied by administrators before any environment
            assert upstream in stacks[:position], f"{stack} reads {upstream}'s state but is planned before it"
