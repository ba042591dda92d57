"""The queue check that tells when the self-hosted scale set is down."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import runner_health  # noqa: E402

sys.path.pop(0)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def job(name, labels, minutes_ago, status="queued"):
    created = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"name": name, "labels": labels, "status": status, "created_at": created,
            "html_url": f"https://github.com/o/r/actions/runs/1/job/{name}"}


def test_only_long_queued_jobs_on_watched_labels_count():
    jobs = [
        job("stuck", ["arc-linux"], 45),
        job("fresh", ["arc-linux"], 5),
        job("hosted", ["ubuntu-latest"], 90),
        job("running", ["arc-linux"], 90, status="in_progress"),
        job("docker", ["arc-linux-docker"], 30),
    ]
    stuck = runner_health.stuck_jobs(jobs, {"arc-linux", "arc-linux-docker"}, NOW, timedelta(minutes=20))
    assert [j.name for j in stuck] == ["stuck", "docker"]
    assert stuck[0].waiting == timedelta(minutes=45)


def test_nothing_is_stuck_when_the_label_is_not_watched():
    assert runner_health.stuck_jobs([job("stuck", ["arc-linux"], 45)], {"other"}, NOW, timedelta(minutes=20)) == []


def test_github_hosted_or_unset_labels_need_no_check_and_no_token():
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "runner_health.py"), "--repo", "o/r", "--label", "", "--label", "ubuntu-latest"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no self-hosted label" in result.stdout


def test_a_watched_label_without_a_token_is_an_error():
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "runner_health.py"), "--repo", "o/r", "--label", "arc-linux"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False,
    )
    assert result.returncode == 2


# --- the script against a fake GitHub API ----------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakegithub import FakeGitHub  # noqa: E402

sys.path.pop(0)

REPO_PATH = "/repos/o/r"


def minutes_ago(minutes):
    from datetime import datetime as dt

    return (dt.now(timezone.utc) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def api_job(name, labels, minutes, status="queued"):
    return {"name": name, "labels": labels, "status": status, "created_at": minutes_ago(minutes),
            "html_url": f"https://github.com/o/r/actions/runs/1/job/{name}"}


def serve_runs(api, runs_by_status, jobs_by_run):
    def runs(request):
        assert request.query["per_page"] == "100"
        all_runs = runs_by_status.get(request.query["status"], [])
        page = int(request.query.get("page", "1"))
        return {"workflow_runs": all_runs[(page - 1) * 100: page * 100]}

    api.route("GET", f"{REPO_PATH}/actions/runs", runs)
    for run_id, jobs in jobs_by_run.items():
        def answer(request, jobs=jobs):
            assert request.query["filter"] == "latest", "only the latest attempt's jobs"
            page = int(request.query.get("page", "1"))
            return {"jobs": jobs[(page - 1) * 100: page * 100]}
        api.route("GET", f"{REPO_PATH}/actions/runs/{run_id}/jobs", answer)


def serve_issues(api, open_issues):
    api.route("GET", f"{REPO_PATH}/issues", lambda r: [i for i in open_issues if r.query.get("labels") == "runner-health"])
    api.route("POST", f"{REPO_PATH}/issues", {"number": 12})
    for issue in open_issues:
        api.route("PATCH", f"{REPO_PATH}/issues/{issue['number']}", {"number": issue["number"]})
        api.route("POST", f"{REPO_PATH}/issues/{issue['number']}/comments", {"id": 1})


def check(api, *extra, labels=("arc-linux", "arc-linux-docker")):
    args = [sys.executable, str(SCRIPTS / "runner_health.py"), "--repo", "o/r", "--max-wait-minutes", "20", *extra]
    for label in labels:
        args += ["--label", label]
    return subprocess.run(args, capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "GH_TOKEN": "t", "GITHUB_API_URL": api.url})


def test_a_job_waiting_inside_an_in_progress_run_is_found_and_the_team_told():
    with FakeGitHub() as api:
        # The run is in progress (one job runs on GitHub-hosted), its ARC job still waits.
        serve_runs(api, {"queued": [], "in_progress": [{"id": 7}]},
                   {7: [api_job("lint", ["ubuntu-latest"], 40, "in_progress"), api_job("tofu", ["arc-linux"], 45)]})
        serve_issues(api, [])
        result = check(api, "--notify", "@example-org/task-platform-infra")
        (created,) = api.sent("POST", f"{REPO_PATH}/issues")
    assert result.returncode == 1, result.stderr
    assert "tofu" in result.stdout
    assert created.body["labels"] == ["runner-health"]
    assert created.body["body"].startswith("@example-org/task-platform-infra")
    assert "gh variable delete RUNNER" in created.body["body"] and "/job/tofu" in created.body["body"]


def test_every_page_of_runs_and_jobs_is_read_and_a_run_in_both_lists_counts_once():
    with FakeGitHub() as api:
        runs = [{"id": n} for n in range(1, 102)]  # two pages
        jobs = {n: [] for n in range(1, 102)}
        jobs[101] = [api_job(f"j{i}", ["ubuntu-latest"], 1) for i in range(100)] + [api_job("late", ["arc-linux-docker"], 30)]
        serve_runs(api, {"queued": runs, "in_progress": [{"id": 101}]}, jobs)
        serve_issues(api, [])
        result = check(api)
        job_lists = [r for r in api.requests if r.path == f"{REPO_PATH}/actions/runs/101/jobs"]
    assert result.returncode == 1, result.stderr
    assert result.stdout.count("late (") == 1, result.stdout
    assert [r.query.get("page") for r in job_lists] == ["1", "2"], "the job list of run 101 read once, both pages"


def test_while_jobs_stay_stuck_the_open_issue_is_kept_current_without_a_new_one():
    with FakeGitHub() as api:
        serve_runs(api, {"queued": [{"id": 3}], "in_progress": []}, {3: [api_job("build", ["arc-linux"], 60)]})
        serve_issues(api, [{"number": 5}])
        result = check(api, "--notify", "@o/t")
        assert result.returncode == 1
        assert api.sent("POST", f"{REPO_PATH}/issues") == []
        (patch,) = api.sent("PATCH", f"{REPO_PATH}/issues/5")
    assert "/job/build" in patch.body["body"]


@pytest.mark.parametrize("labels", [("arc-linux",), ()], ids=["healthy again", "labels deleted"])
def test_when_nothing_waits_any_more_the_issue_is_closed(labels):
    with FakeGitHub() as api:
        serve_runs(api, {"queued": [], "in_progress": []}, {})
        serve_issues(api, [{"number": 5}])
        result = check(api, "--notify", "@o/t", labels=labels)
        assert result.returncode == 0, result.stderr
        assert api.sent("POST", f"{REPO_PATH}/issues/5/comments")
        (close,) = api.sent("PATCH", f"{REPO_PATH}/issues/5")
    assert close.body["state"] == "closed"


def test_an_api_failure_is_an_error_not_a_healthy_answer():
    with FakeGitHub() as api:  # no routes: every call answers 404
        result = check(api)
    assert result.returncode == 2
    assert "GitHub API" in result.stderr


def test_the_workflow_notifies_through_the_issue_with_the_permission_it_needs():
    workflow = yaml.safe_load((SCRIPTS.parent / "workflows" / "runner-health.yaml").read_text())
    job = workflow["jobs"]["queue"]
    assert job["permissions"] == {"actions": "read", "issues": "write"}
    step = next(s for s in job["steps"] if "runner_health.py" in s.get("run", ""))
    assert '--notify "$NOTIFY"' in step["run"]
    assert step["env"]["NOTIFY"].startswith("${{ vars.RUNNER_HEALTH_NOTIFY || '@")
