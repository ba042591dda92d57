"""release.yaml and promote.yaml run as GitHub would run them (ghasim): every `run:` script in
bash with fake `docker`, `cosign`, `helm` and `apt-get` on PATH, every action replaced by a fake
that checks its inputs, the secrets a job receives being those docs/ci-cd.md configures for
its environment, and promote.py / auto_merge.py running for real (auto_merge.py against a
local fake of the GitHub API)."""

import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakegithub import FakeGitHub  # noqa: E402
from ghasim import FakeCommands, StepFailed, run_job  # noqa: E402
from workflows import REPO, configured_secrets  # noqa: E402

sys.path.pop(0)

RELEASE = yaml.safe_load((REPO / ".github/workflows/release.yaml").read_text())
PROMOTE = yaml.safe_load((REPO / ".github/workflows/promote.yaml").read_text())
SHA = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
IMAGE_DIGEST = "sha256:" + "1" * 64
CHART_DIGEST = "sha256:" + "2" * 64
GITHUB = {
    "sha": SHA, "repository": "example-org/task-platform", "run_id": "4242", "event_name": "push",
    "ref": "refs/heads/main",
    "workflow_ref": "example-org/task-platform/.github/workflows/release.yaml@refs/heads/main",
}
VARS = {"ECR_REGISTRY": REGISTRY, "AWS_REGION": "eu-west-1", "RELEASE_BOT_CLIENT_ID": "Iv23example",
        "AWS_RELEASE_ROLE_ARN": "arn:aws:iam::123456789012:role/task-platform-release"}
IDENTITY = "https://github.com/" + GITHUB["workflow_ref"]


def secrets():
    """The values GitHub would hold: one dummy per secret docs/ci-cd.md tells you to set."""
    return {env: {name: f"<{name} of {env or 'repo'}>" for name in names} for env, names in configured_secrets().items()}


class Actions:
    """Fakes of the actions these jobs use; each checks the inputs the real action requires."""

    def __init__(self, workdir: Path, built_digest: str = IMAGE_DIGEST):
        self.workdir = workdir
        self.built_digest = built_digest
        self.prs: list[dict] = []

    def table(self):
        noop = lambda with_, env: {}  # noqa: E731
        return {
            "actions/checkout": noop,
            "aws-actions/amazon-ecr-login": noop,
            "docker/setup-buildx-action": noop,
            "sigstore/cosign-installer": noop,
            "aws-actions/configure-aws-credentials": self.aws,
            "docker/build-push-action": self.build,
            "anchore/sbom-action": self.sbom,
            "actions/create-github-app-token": self.app_token,
            "peter-evans/create-pull-request": self.pull_request,
        }

    @staticmethod
    def aws(with_, env):
        if not with_.get("role-to-assume", "").startswith("arn:aws:iam::"):
            raise StepFailed(f"no role to assume: {with_.get('role-to-assume')!r}")
        return {}

    def build(self, with_, env):
        assert with_["push"] == "true" and with_["tags"] == f"{REGISTRY}/task-api:{SHA}"
        return {"digest": self.built_digest}

    def sbom(self, with_, env):
        assert with_["image"] == f"{REGISTRY}/task-api@{IMAGE_DIGEST}", with_["image"]
        (self.workdir / with_["output-file"]).write_text("{}")
        return {}

    @staticmethod
    def app_token(with_, env):
        # The real action fails without a private key: GitHub passes an unset secret as "".
        if not with_.get("client-id") or not with_.get("private-key"):
            raise StepFailed("create-github-app-token: client-id and private-key are required")
        return {"token": "ghs_bot"}

    def pull_request(self, with_, env):
        if with_.get("token") != "ghs_bot":
            raise StepFailed("the pull request must be opened with the release bot's token")
        self.prs.append(with_)
        return {"pull-request-number": "7", "pull-request-url": "https://github.com/example-org/task-platform/pull/7"}


def image_fakes(fakes: FakeCommands, *, exists: bool, signed: bool):
    inspect = {"match": r"^buildx imagetools inspect \S+task-api:" + SHA, "exit": 0 if exists else 1,
               "stdout": IMAGE_DIGEST if exists else "", "stderr": "" if exists else "not found"}
    fakes.add("docker", [inspect, {"match": r"^buildx imagetools inspect \S+@sha256:\S+ --format .*Provenance", "stdout": "{}"}])
    fakes.add("cosign", [
        {"match": r"^verify(-attestation)? ", "exit": 0 if signed else 1},
        {"match": r"^(sign|attest) --yes ", "exit": 0},
    ])


@pytest.fixture
def workdir(tmp_path):
    work = tmp_path / "repo"
    for path in ["apps/dev/release.yaml", "apps/staging/release.yaml", "apps/prod/release.yaml",
                 ".github/scripts/promote.py", ".github/scripts/auto_merge.py"]:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, work / path)
    return work


def run_image_job(workdir, tmp_path, *, exists, signed):
    fakes = FakeCommands(tmp_path / "bin")
    image_fakes(fakes, exists=exists, signed=signed)
    actions = Actions(workdir)
    run = run_job(RELEASE, "image", workdir=workdir, fakes=fakes, actions=actions.table(), github=GITHUB,
                  vars=VARS, secrets_by_environment=secrets())
    assert not run.failed, "\n".join(run.log)
    return run, fakes


def signing_calls(fakes):
    return [c for c in fakes.calls("cosign") if c[0] in ("sign", "attest")]


def test_a_new_commit_is_built_pushed_signed_and_attested_by_digest(workdir, tmp_path):
    run, fakes = run_image_job(workdir, tmp_path, exists=False, signed=False)
    assert "Build and push" in run.executed
    assert run.outputs["digest"] == IMAGE_DIGEST
    ref = f"{REGISTRY}/task-api@{IMAGE_DIGEST}"
    assert signing_calls(fakes) == [
        ["sign", "--yes", ref],
        ["attest", "--yes", "--type", "spdxjson", "--predicate", "sbom.spdx.json", ref],
        ["attest", "--yes", "--type", "slsaprovenance", "--predicate", "provenance.json", ref],
    ]


def test_a_rerun_of_a_signed_release_reuses_the_image_and_signs_nothing_again(workdir, tmp_path):
    run, fakes = run_image_job(workdir, tmp_path, exists=True, signed=True)
    assert "Build and push" not in run.executed
    assert run.outputs["digest"] == IMAGE_DIGEST
    assert signing_calls(fakes) == []
    verified = [c for c in fakes.calls("cosign") if c[0].startswith("verify")]
    assert verified and all(f"{REGISTRY}/task-api@{IMAGE_DIGEST}" in c for c in verified)
    assert all(c[c.index("--certificate-identity") + 1] == IDENTITY for c in verified), "verify this workflow's identity"


def test_a_rerun_after_a_push_whose_signing_failed_signs_the_existing_image(workdir, tmp_path):
    run, fakes = run_image_job(workdir, tmp_path, exists=True, signed=False)
    assert "Build and push" not in run.executed
    ref = f"{REGISTRY}/task-api@{IMAGE_DIGEST}"
    assert ["sign", "--yes", ref] in signing_calls(fakes)
    assert len(signing_calls(fakes)) == 3, "the signature and both attestations"


def chart_fakes(fakes, *, published, signed, version="0.2.0"):
    pull = ({"match": r"^pull oci://\S+/charts/task-api --version " + version,
             "stdout": f"Pulled: {REGISTRY}/charts/task-api:{version}\nDigest: {CHART_DIGEST}\n"}
            if published else {"match": r"^pull ", "exit": 1, "stderr": "not found"})
    fakes.add("helm", [
        {"match": r"^lint --strict apps/base/task-api/chart"},
        {"match": r"^show chart apps/base/task-api/chart$", "stdout": f"apiVersion: v2\nname: task-api\nversion: {version}\n"},
        pull,
        {"match": r"^package apps/base/task-api/chart --destination "},
        {"match": r"^push \S+/chart/task-api-" + version + r"\.tgz oci://\S+/charts$",
         "stdout": f"Pushed: {REGISTRY}/charts/task-api:{version}\nDigest: {CHART_DIGEST}\n"},
    ])
    fakes.add("cosign", [{"match": r"^verify ", "exit": 0 if signed else 1}, {"match": r"^sign --yes "}])


def run_chart_job(workdir, tmp_path, *, published, signed):
    fakes = FakeCommands(tmp_path / "bin")
    chart_fakes(fakes, published=published, signed=signed)
    run = run_job(RELEASE, "chart", workdir=workdir, fakes=fakes, actions=Actions(workdir).table(), github=GITHUB,
                  vars=VARS, secrets_by_environment=secrets(),
                  skip_steps={"Install Helm (pinned, checksum-verified)": "downloads Helm; a fake helm is on PATH"})
    assert not run.failed, "\n".join(run.log)
    return run, fakes


def test_a_new_chart_version_is_packaged_pushed_and_signed(workdir, tmp_path):
    run, fakes = run_chart_job(workdir, tmp_path, published=False, signed=False)
    assert run.outputs["version"] == "0.2.0"
    assert any(c[0] == "push" for c in fakes.calls("helm"))
    assert fakes.calls("cosign") == [["sign", "--yes", f"{REGISTRY}/charts/task-api@{CHART_DIGEST}"]]


@pytest.mark.parametrize("signed", [True, False])
def test_a_published_chart_version_is_never_pushed_again_but_signed_if_unsigned(workdir, tmp_path, signed):
    run, fakes = run_chart_job(workdir, tmp_path, published=True, signed=signed)
    assert not any(c[0] in ("package", "push") for c in fakes.calls("helm"))
    signs = [c for c in fakes.calls("cosign") if c[0] == "sign"]
    assert signs == ([] if signed else [["sign", "--yes", f"{REGISTRY}/charts/task-api@{CHART_DIGEST}"]])


def no_apt(fakes):
    fakes.add("apt-get", [{"match": ".*"}])


def test_dev_job_writes_the_release_opens_the_bot_pull_request_and_turns_on_squash_auto_merge(workdir, tmp_path):
    fakes = FakeCommands(tmp_path / "bin")
    no_apt(fakes)
    actions = Actions(workdir)
    with FakeGitHub() as api:
        api.route("GET", "/repos/example-org/task-platform/pulls/7", {"node_id": "PR_kw7"})
        api.route("POST", "/graphql", {"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": 7}}}})
        run = run_job(RELEASE, "dev", workdir=workdir, fakes=fakes, actions=actions.table(),
                      github={**GITHUB, "api_url": api.url, "graphql_url": api.url + "/graphql"}, vars=VARS,
                      needs={"image": {"outputs": {"digest": IMAGE_DIGEST}}, "chart": {"outputs": {"version": "0.2.0"}}},
                      secrets_by_environment=secrets())
        assert not run.failed, "\n".join(run.log)
        (graphql,) = api.sent("POST", "/graphql")
    text = (workdir / "apps/dev/release.yaml").read_text()
    assert f'tag: "{SHA}"' in text and 'tag: "0.2.0"' in text
    (pr,) = actions.prs
    assert pr["add-paths"] == "apps/dev/release.yaml" and pr["branch"] == "release/dev"
    assert graphql.headers["authorization"] == "Bearer ghs_bot", "auto-merge is enabled by the bot, not GITHUB_TOKEN"
    assert graphql.body["variables"] == {"id": "PR_kw7"}
    assert "mergeMethod: SQUASH" in graphql.body["query"].replace("\n", " ")


@pytest.mark.parametrize(("target", "source"), [("staging", "dev"), ("prod", "staging")])
def test_promotion_copies_the_previous_environment_and_leaves_the_merge_to_a_person(workdir, tmp_path, target, source):
    fakes = FakeCommands(tmp_path / "bin")
    no_apt(fakes)
    src = workdir / f"apps/{source}/release.yaml"
    before = {d["kind"]: d for d in yaml.safe_load_all(src.read_text())}
    text = src.read_text().replace(before["HelmRelease"]["spec"]["values"]["image"]["tag"], "d" * 40)
    src.write_text(text.replace(f'tag: "{before["OCIRepository"]["spec"]["ref"]["tag"]}"', 'tag: "9.8.7"'))
    actions = Actions(workdir)
    run = run_job(PROMOTE, "promote", workdir=workdir, fakes=fakes, actions=actions.table(),
                  github={**GITHUB, "event_name": "workflow_dispatch"}, vars=VARS, inputs={"to": target, "runner": ""},
                  secrets_by_environment=secrets())
    assert not run.failed, "\n".join(run.log)
    promoted = list(yaml.safe_load_all((workdir / f"apps/{target}/release.yaml").read_text()))
    assert promoted == list(yaml.safe_load_all(src.read_text()))
    assert {"9.8.7", "d" * 40} <= {promoted[0]["spec"]["ref"]["tag"], promoted[1]["spec"]["values"]["image"]["tag"]}
    (pr,) = actions.prs
    assert pr["add-paths"] == f"apps/{target}/release.yaml" and pr["branch"] == f"promote/{target}"
    assert not any("auto_merge" in step for step in run.executed)


def test_the_scheduled_promotion_proposes_staging(workdir, tmp_path):
    fakes = FakeCommands(tmp_path / "bin")
    no_apt(fakes)
    actions = Actions(workdir)
    run = run_job(PROMOTE, "promote", workdir=workdir, fakes=fakes, actions=actions.table(),
                  github={**GITHUB, "event_name": "schedule"}, vars=VARS, inputs={}, secrets_by_environment=secrets())
    assert not run.failed, "\n".join(run.log)
    assert actions.prs[0]["add-paths"] == "apps/staging/release.yaml"


@pytest.mark.parametrize(("workflow", "job_id"), [(RELEASE, "dev"), (PROMOTE, "promote")])
def test_without_its_environment_the_bot_job_gets_no_key_and_opens_nothing(workdir, tmp_path, workflow, job_id):
    """What removing `environment: release` does: GitHub withholds the environment's secrets."""
    fakes = FakeCommands(tmp_path / "bin")
    no_apt(fakes)
    stripped = {**workflow, "jobs": {**workflow["jobs"], job_id: {k: v for k, v in workflow["jobs"][job_id].items() if k != "environment"}}}
    actions = Actions(workdir)
    run = run_job(stripped, job_id, workdir=workdir, fakes=fakes, actions=actions.table(), github=GITHUB, vars=VARS,
                  inputs={"to": "staging"}, needs={"image": {"outputs": {"digest": IMAGE_DIGEST}}, "chart": {"outputs": {"version": "0.2.0"}}},
                  secrets_by_environment=secrets())
    assert run.failed and actions.prs == []
