""".github/scripts/tofu-env.sh run against fakes of the commands it calls (`tofu`, `curl`) on
PATH: which tofu commands it issues in plan and in apply mode, in which order, with which plan
file, which credentials it hands on, and what it does when its run has been superseded."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".github" / "scripts" / "tofu-env.sh"
STACKS = ["network", "cluster", "database", "platform"]
SHA = "0123456789abcdef0123456789abcdef01234567"

# Records argv, the working stack and whether the Flux key reached it; answers `plan` with the
# exit code FAKE_PLAN_EXIT_<stack> (default 2: changes) and writes the -out file.
FAKE_TOFU = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
chdir = next(a.split("=", 1)[1] for a in args if a.startswith("-chdir="))
stack = os.path.basename(chdir)
cmd = next(a for a in args if not a.startswith("-"))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"stack": stack, "cmd": cmd, "args": args,
                          "key": os.environ.get("TF_VAR_flux_github_app_private_key"),
                          "webhook": os.environ.get("TF_VAR_flux_notifications_slack_webhook")}) + "\n")
if cmd == "plan":
    out = next(a.split("=", 1)[1] for a in args if a.startswith("-out="))
    code = int(os.environ.get("FAKE_PLAN_EXIT_" + stack, "2"))
    if code in (0, 2):
        open(out, "w").write("plan of " + stack)
    sys.exit(code)
if cmd == "show":
    print("  # planned changes of " + stack)
sys.exit(0)
"""

# Answers the head of main: the next line of FAKE_HEADS each call (the last one repeats).
FAKE_CURL = r"""#!/usr/bin/env python3
import os, sys
state = os.environ["FAKE_HEADS"] + ".n"
n = int(open(state).read()) if os.path.exists(state) else 0
heads = open(os.environ["FAKE_HEADS"]).read().split()
open(state, "w").write(str(n + 1))
with open(os.environ["FAKE_LOG"] + ".curl", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
print(heads[min(n, len(heads) - 1)], end="")
"""


def _exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def run(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _exe(bindir / "tofu", FAKE_TOFU)
    _exe(bindir / "curl", FAKE_CURL)
    log = tmp_path / "tofu.log"
    heads = tmp_path / "heads"

    def _run(mode, env_name="dev", *, heads_seq=(SHA,), key="-----BEGIN KEY-----",
             webhook="https://hooks.slack.example/T0/B0/x", extra=None, gh=True):
        heads.write_text("\n".join(heads_seq))
        env = {
            "PATH": f"{bindir}:{os.environ['PATH']}",
            "FAKE_LOG": str(log),
            "FAKE_HEADS": str(heads),
            "HOME": str(tmp_path),
        }
        if gh:
            env.update({"GITHUB_SHA": SHA, "GITHUB_REPOSITORY": "example-org/task-platform",
                        "GITHUB_API_URL": "https://api.github.com", "GH_TOKEN": "ghs_x"})
        if key is not None:
            env["TF_VAR_flux_github_app_private_key"] = key
        if webhook is not None:
            env["TF_VAR_flux_notifications_slack_webhook"] = webhook
        env.update(extra or {})
        out = tmp_path / "out"
        proc = subprocess.run(["bash", str(SCRIPT), mode, env_name, str(out)], env=env, capture_output=True, text=True)
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        summary = (out / "plan.md").read_text() if (out / "plan.md").exists() else ""
        return proc, calls, summary, out

    return _run


def _cmds(calls):
    return [(c["stack"], c["cmd"]) for c in calls]


def test_plan_mode_plans_every_stack_in_order_and_applies_nothing(run):
    proc, calls, summary, out = run("plan")
    assert proc.returncode == 0, proc.stderr
    assert [c for c in _cmds(calls) if c[1] == "apply"] == [], "plan mode must never apply"
    planned = [s for s, cmd in _cmds(calls) if cmd == "plan"]
    assert planned == STACKS
    for c in calls:
        if c["cmd"] == "plan":
            assert f"-var-file={REPO}/opentofu/environments/dev/{c['stack']}.tfvars" in c["args"]
            assert "-lock-timeout=5m" in c["args"]
        if c["cmd"] == "init":
            assert f"-backend-config={REPO}/opentofu/environments/dev/{c['stack']}.tfbackend" in c["args"]
    assert summary.startswith("<!-- opentofu-plan:dev -->")
    assert summary.count("<details>") == 4 and "planned changes of platform" in summary


def test_plan_mode_hands_no_git_credential_to_code_under_review(run):
    _, calls, _, _ = run("plan", key="-----BEGIN KEY-----")
    assert calls and all(c["key"] is None for c in calls)


def test_plan_mode_hands_no_notification_webhook_to_code_under_review(run):
    _, calls, _, _ = run("plan")
    assert calls and all(c["webhook"] is None for c in calls)


def test_apply_hands_the_notification_webhook_to_every_apply(run):
    proc, calls, _, _ = run("apply")
    assert proc.returncode == 0, proc.stderr
    applies = [c for c in calls if c["cmd"] == "apply"]
    assert applies and all(c["webhook"] == "https://hooks.slack.example/T0/B0/x" for c in applies)


def test_apply_refuses_to_start_without_the_notification_webhook(run):
    proc, calls, _, _ = run("apply", webhook=None)
    assert proc.returncode == 2
    assert "FLUX_NOTIFICATIONS_SLACK_WEBHOOK" in proc.stderr
    assert calls == []


def test_apply_mode_applies_exactly_the_plan_file_of_each_stack(run):
    proc, calls, _, out = run("apply", "staging")
    assert proc.returncode == 0, proc.stderr
    sequence = [(s, cmd) for s, cmd in _cmds(calls) if cmd in ("plan", "apply")]
    assert sequence == [(s, c) for s in STACKS for c in ("plan", "apply")], "each stack is applied before the next is planned"
    for c in calls:
        if c["cmd"] == "apply":
            assert c["args"][-1] == str(out / f"{c['stack']}.tfplan")
            assert not any(a.startswith("-var") for a in c["args"]), "a saved plan is applied as planned"
            assert c["key"] == "-----BEGIN KEY-----", "the ephemeral key is needed again at apply"
        if c["cmd"] in ("plan", "apply"):
            assert "-lock-timeout=40m" in c["args"]


def test_apply_mode_skips_stacks_without_changes(run):
    _, calls, _, _ = run("apply", extra={"FAKE_PLAN_EXIT_cluster": "0", "FAKE_PLAN_EXIT_database": "0"})
    applied = [s for s, cmd in _cmds(calls) if cmd == "apply"]
    assert applied == ["network", "platform"]


def test_a_failed_plan_stops_the_later_stacks(run):
    proc, calls, summary, _ = run("apply", extra={"FAKE_PLAN_EXIT_cluster": "1"})
    assert proc.returncode == 1
    assert [s for s, cmd in _cmds(calls) if cmd == "plan"] == ["network", "cluster"]
    assert [s for s, cmd in _cmds(calls) if cmd == "apply"] == ["network"]
    assert "**plan failed** (exit 1)" in summary


def test_apply_refuses_to_start_without_the_flux_key(run):
    proc, calls, _, _ = run("apply", key=None)
    assert proc.returncode == 2
    assert "FLUX_GITHUB_APP_PRIVATE_KEY" in proc.stderr
    assert calls == []


def test_apply_refuses_to_start_without_the_head_check(run):
    proc, calls, _, _ = run("apply", gh=False)
    assert proc.returncode == 2 and calls == []


def test_a_superseded_run_applies_nothing_and_succeeds(run):
    proc, calls, summary, _ = run("apply", "prod", heads_seq=("f" * 40,))
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert "superseded" in summary


def test_a_run_superseded_while_planning_does_not_apply_that_plan(run):
    # network: checked before planning (head), checked before applying (head);
    # cluster: checked before planning (head), then main moves on.
    proc, calls, summary, _ = run("apply", heads_seq=(SHA, SHA, SHA, "f" * 40))
    assert proc.returncode == 0, proc.stderr
    assert [s for s, cmd in _cmds(calls) if cmd == "apply"] == ["network"]
    assert [s for s, cmd in _cmds(calls) if cmd == "plan"] == ["network", "cluster"]
    assert "while planning cluster" in summary


def test_the_head_is_read_from_the_api_with_the_job_token(run, tmp_path):
    run("apply")
    curl = (tmp_path / "tofu.log.curl").read_text().splitlines()
    assert curl and all("https://api.github.com/repos/example-org/task-platform/commits/main" in c for c in curl)
    assert all("Authorization: Bearer ghs_x" in c for c in curl)


@pytest.mark.parametrize("bad", [("destroy", "dev"), ("plan", "qa")])
def test_unknown_mode_or_environment_is_refused(run, bad):
    proc, calls, _, _ = run(*bad)
    assert proc.returncode == 2 and calls == []
