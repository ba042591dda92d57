"""Documentation stays true to the repository: the diagram matches its source, links resolve,
every decision record has the sections a reviewer needs, and every runbook the README promises exists."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1]
REPO = DOCS.parent


def test_architecture_diagram_is_rendered_from_its_source(tmp_path):
    if shutil.which("dot") is None:
        pytest.fail("graphviz `dot` is missing: run .ci/tools.sh")
    subprocess.run([sys.executable, str(DOCS / "architecture" / "diagram.py"), str(tmp_path)], check=True)
    for name in ("architecture.dot", "architecture.png"):
        committed = (DOCS / "architecture" / name).read_bytes()
        rendered = (tmp_path / name).read_bytes()
        assert committed == rendered, (
            f"docs/architecture/{name} is stale: run `python docs/architecture/diagram.py` and commit it"
        )


def test_architecture_diagram_shows_the_required_pieces():
    graph = (DOCS / "architecture" / "architecture.dot").read_text()
    for needle in [
        "3 AZs", "public subnets", "private subnets", "database subnets", "Internet gateway",
        "NAT gateways", "ALB", "node pool: system", "node pool: apps", "node pool: runners",
        "RDS PostgreSQL", "GitHub OIDC provider", "Flux controllers", "git pull",
        "Prometheus", "Loki", "Tempo", "HTTPS", "PostgreSQL over TLS", "OTLP",
    ]:
        assert needle.lower() in graph.lower(), f"architecture diagram lacks {needle!r}"


def markdown_files():
    files = [REPO / "README.md", REPO / "opentofu" / "README.md"]
    files += sorted(DOCS.rglob("*.md"))
    return [f for f in files if f.exists()]


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)} links to missing files: {broken}"


def decision_records():
    return sorted((DOCS / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md"))


def test_decision_records_are_numbered_uniquely():
    numbers = [p.name[:4] for p in decision_records()]
    assert len(numbers) >= 10
    duplicates = {n for n in numbers if numbers.count(n) > 1}
    assert not duplicates, f"decision numbers used twice: {sorted(duplicates)}"


@pytest.mark.parametrize("adr", decision_records(), ids=lambda p: p.name)
def test_decision_record_has_context_decision_and_alternatives(adr):
    text = adr.read_text().lower()
    assert text.startswith("# "), "an ADR starts with its title"
    for section in ("context", "decision", "alternatives"):
        assert f"## {section}" in text, f"{adr.name} lacks a '## {section.title()}' section"


REQUIRED_RUNBOOKS = [
    "bootstrap-environment.md", "promote-release.md", "rollback.md", "flux-cli.md",
    "rotate-oidc-keys.md", "restore-database.md", "switch-runners.md", "scale-limits-and-costs.md",
    "alerts.md",
]


@pytest.mark.parametrize("name", REQUIRED_RUNBOOKS)
def test_runbook_exists_and_has_steps(name):
    path = DOCS / "runbooks" / name
    assert path.exists(), f"docs/runbooks/{name} is missing"
    text = path.read_text()
    assert "```" in text, f"{name} should give the exact commands"


def test_every_alert_in_the_chart_has_a_runbook_entry():
    rules = list((REPO / "apps").rglob("prometheusrule*.yaml"))
    alerts = set()
    for rule in rules:
        alerts |= set(re.findall(r"alert:\s*([A-Za-z0-9_]+)", rule.read_text()))
    assert len(alerts) >= 5, f"expected the chart's alert rules, found {sorted(alerts)}"
    runbook = (DOCS / "runbooks" / "alerts.md").read_text()
    missing = sorted(a for a in alerts if a not in runbook)
    assert not missing, f"alerts without an entry in docs/runbooks/alerts.md: {missing}"
