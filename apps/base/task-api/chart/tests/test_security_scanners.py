"""checkov and trivy scan what the chart renders for every value set. The chart's own values
cannot be scanned bare (they are refused by the schema), so the rendered manifests are
scanned; every finding must be waived with a reason in scanner-waivers.yaml."""

import json
import os
import subprocess

import pytest
import yaml

from chart_harness import TESTS, helm_template, tool, value_sets

WAIVERS = yaml.safe_load((TESTS / "scanner-waivers.yaml").read_text())


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory, value_set_dir):
    out = tmp_path_factory.mktemp("rendered")
    for vs in value_sets(value_set_dir):
        name = vs.name.replace("/", "-").removesuffix(".yaml") + ".yaml"
        (out / name).write_text(helm_template("-f", str(vs.path)).stdout)
    return out


@pytest.fixture(scope="module")
def scans(rendered_dir, tmp_path_factory):
    """Starts both scanners at once (they dominate this folder's run time); each test waits
    for its own."""
    work = tmp_path_factory.mktemp("scans")
    checkov = subprocess.Popen(
        [tool("checkov"), "-d", str(rendered_dir), "--framework", "kubernetes", "--skip-download",
         "--quiet", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, BC_SKIP_MAPPING="TRUE", LOG_LEVEL="ERROR"),
    )
    trivy_report = work / "trivy.json"
    trivy = subprocess.Popen(
        [tool("trivy"), "config", "--skip-check-update", "--quiet", "--format", "json",
         "--cache-dir", str(work / "cache"), "--output", str(trivy_report), str(rendered_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    scans = {"checkov": checkov, "trivy": trivy, "trivy_report": trivy_report}
    yield scans
    for process in (checkov, trivy):
        if process.poll() is None:
            process.kill()
            process.wait()


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def test_every_waiver_has_a_reason():
    for scanner, waivers in WAIVERS.items():
        for check, reason in waivers.items():
            assert isinstance(reason, str) and len(reason.split()) >= 5, f"{scanner} {check}: give the reason"


def assert_findings_waived(scanner: str, findings: set[tuple[str, str]]):
    waived = set(WAIVERS.get(scanner) or {})
    unwaived = sorted(f for f in findings if f[0] not in waived)
    assert not unwaived, f"{scanner} findings without a waiver (check, where): {unwaived}"
    stale = sorted(waived - {check for check, _ in findings})
    assert not stale, f"{scanner} waivers no longer needed, remove them: {stale}"


def test_checkov(scans):
    returncode, stdout, stderr = finished(scans["checkov"])
    assert returncode in (0, 1), f"checkov crashed:\n{stderr[-3000:]}"
    report = json.loads(stdout)
    reports = report if isinstance(report, list) else [report]
    findings = set()
    passed = 0
    for rep in reports:
        passed += rep.get("summary", {}).get("passed", 0)
        for failed in rep.get("results", {}).get("failed_checks", []):
            findings.add((failed["check_id"], f"{failed['file_path']}:{failed['resource']}"))
    assert passed > 50, "checkov scanned nothing: the rendered manifests were not found"
    assert_findings_waived("checkov", findings)


def test_trivy_config(scans, rendered_dir):
    returncode, _, stderr = finished(scans["trivy"])
    assert returncode == 0, f"trivy failed:\n{stderr[-3000:]}"
    report = json.loads(scans["trivy_report"].read_text())
    results = report.get("Results") or []
    assert len(results) == len(list(rendered_dir.glob("*.yaml"))), "trivy did not scan every rendered file"
    findings = {
        (m["ID"], f"{r['Target']}: {m['Title']}")
        for r in results
        for m in (r.get("Misconfigurations") or [])
        if m.get("Status", "FAIL") == "FAIL"
    }
    assert_findings_waived("trivy", findings)
