"""The queue check that tells when the self-hosted scale set is down."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
