"""Documentation stays true to the repository: the diagram matches its source, links resolve,
every decision record has the sections a reviewer needs, and every runbook the README promises exists."""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

DOCS = Path(__file__).resolve().parents[1]
REPO = DOCS.parent


ARCH = DOCS / "architecture"
VIEWS = ["overview", "network", "identity", "gitops"]


def load_diagram():
    spec = importlib.util.spec_from_file_location("diagram", ARCH / "diagram.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["diagram"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


DIAGRAM = load_diagram()
MODEL = {make.__name__: make() for make in DIAGRAM.VIEWS}


def need_dot():
    if shutil.which("dot") is None:
        pytest.fail("graphviz `dot` is missing: run .ci/tools.sh")


def test_the_committed_views_are_exactly_the_views_diagram_py_draws():
    assert sorted(MODEL) == sorted(VIEWS)
    on_disk = sorted(p.stem for p in ARCH.glob("*.dot"))
    assert on_disk == sorted(VIEWS), f"stale or missing .dot files: {on_disk}"
    assert sorted(p.stem for p in ARCH.glob("*.svg")) == sorted(VIEWS)
    assert not list(ARCH.glob("*.png")), "the views are SVG (they scale to the page); no PNG is generated"


@pytest.mark.parametrize("view", VIEWS)
def test_the_graph_source_is_generated_by_diagram_py_and_machine_independent(view):
    committed = (ARCH / f"{view}.dot").read_text()
    assert committed == MODEL[view].dot(), f"docs/architecture/{view}.dot is stale: run `python docs/architecture/diagram.py`"
    for needle in ("image=", "/root/", "/home/", "site-packages", "\\\\"):
        assert needle not in committed, f"{view}.dot holds {needle!r}: the graph must not depend on the machine"


SVG_NS = {"svg": "http://www.w3.org/2000/svg"}


def drawn(svg: bytes) -> tuple[list[str], list[str]]:
    """What a reader sees and what is connected: every text and every node/edge title, sorted.
    Coordinates, font metrics and the Graphviz version line are left out: they depend on the
    machine, what the picture says does not."""
    root = ElementTree.fromstring(svg)
    texts = sorted((e.text or "").strip() for e in root.iter("{http://www.w3.org/2000/svg}text"))
    titles = sorted((e.text or "").strip() for e in root.iter("{http://www.w3.org/2000/svg}title"))
    return texts, titles


@pytest.mark.parametrize("view", VIEWS)
def test_the_committed_picture_is_drawn_from_the_committed_graph(view, tmp_path):
    need_dot()
    rendered = subprocess.run(["dot", "-Tsvg", str(ARCH / f"{view}.dot")], capture_output=True, check=True).stdout
    committed = (ARCH / f"{view}.svg").read_bytes()
    assert drawn(committed) == drawn(rendered), (
        f"docs/architecture/{view}.svg does not show what {view}.dot says: run `python docs/architecture/diagram.py`"
    )
    assert b"xlink:href=\"/" not in committed and b"<image" not in committed, "no linked files in the picture"


def test_the_overview_is_readable_at_page_width():
    """GitHub shows an image at most about 880 px wide; edge labels (12 pt) must stay >= 9 px."""
    root = ElementTree.fromstring((ARCH / "overview.svg").read_bytes())
    width_pt = float(root.get("width").removesuffix("pt"))
    assert 12 * 880 / width_pt >= 9, f"overview is {width_pt:.0f} pt wide: split it or shorten its labels"


def labels(view):
    return {node: label for node, label in MODEL[view].nodes.items()}


def edges(view):
    return MODEL[view].edges


def edge_label(view, a, b):
    found = [label for x, y, label in edges(view) if (x, y) == (a, b)]
    assert found, f"{view}: no edge {a} -> {b}"
    return found[0]


def tfvars(env, stack):
    return (REPO / "opentofu" / "environments" / env / f"{stack}.tfvars").read_text()


def test_people_are_in_the_picture_and_act_through_pull_requests():
    for node in ("developer", "approver"):
        assert node in labels("overview") and node in labels("gitops")
    assert edge_label("overview", "developer", "repo") and edge_label("overview", "approver", "repo")
    assert edge_label("gitops", "approver", "promote")


def test_federation_goes_through_sts_in_order():
    assert "sts" in labels("overview")
    edge_label("overview", "actions", "sts")
    edge_label("overview", "sts", "roles")
    steps = [label for _, _, label in edges("identity") if label]
    assert [int(s.split(".", 1)[0]) for s in steps] == list(range(1, len(steps) + 1))
    assert "AssumeRoleWithWebIdentity" in steps[2] and "trust policy" in steps[4]
    sub = "repo:example-org/task-platform:environment:<env>"
    assert sub in labels("identity")["role_0"]
    trust = (REPO / "opentofu" / "modules" / "github-oidc-role" / "main.tf").read_text()
    assert 'subject   = "repo:${var.github_repository}:environment:${var.github_environment}"' in trust
    assert ':aud"' in trust and ':sub"' in trust, "the role trusts aud and sub as drawn"


def test_opentofu_reaches_the_aws_apis_and_the_eks_api():
    assert "OpenTofu" in edge_label("overview", "roles", "awsapi")
    assert "OpenTofu" in edge_label("overview", "roles", "eksapi")


def test_flux_pulls_git_over_https_never_ssh():
    sources = [*(REPO / "opentofu" / "stacks" / "platform").glob("*.tf"), *(REPO / "clusters").glob("*/flux-system/*.yaml")]
    text = "\n".join(p.read_text() for p in sources)
    assert "https://github.com/" in text, "Flux's Git source is no longer HTTPS: redraw"
    assert not re.search(r"ssh://|git@github\.com", text), "Flux reads Git over SSH somewhere: redraw"
    assert "HTTPS" in edge_label("overview", "flux", "repo")
    for view in VIEWS:
        text = (ARCH / f"{view}.dot").read_text()
        assert "SSH" not in text and "deploy key" not in text


def test_the_runners_poll_github_outward_and_nothing_calls_in():
    assert "poll" in edge_label("overview", "arc", "actions")
    assert not [e for e in edges("overview") if e[1] == "arc"], "GitHub never connects to the runners"


def public_endpoint_ranges(env: str) -> list[str]:
    text = tfvars(env, "cluster")
    match = re.search(r"^endpoint_public_access_(?:cidrs|sources)\s*=\s*([\[{])(.*?)[\]}]", text, re.M | re.S)
    return re.findall(r'"(\d+\.\d+\.\d+\.\d+/\d+)"', match.group(2)) if match else []


def test_the_eks_endpoint_is_drawn_as_opentofu_configures_it():
    cluster = (REPO / "opentofu" / "stacks" / "cluster" / "main.tf").read_text()
    private = re.search(r"endpoint_private_access\s*=\s*true", cluster) is not None
    public_setting = re.search(r"endpoint_public_access\s*=\s*(\S+)", cluster).group(1)
    if public_setting.startswith("var."):
        public = {re.search(r"^endpoint_public_access\s*=\s*(\w+)", tfvars(e, "cluster"), re.M).group(1) == "true"
                  for e in ("dev", "staging", "prod")}
        assert len(public) == 1, "environments differ in EKS endpoint access: draw each"
        (public,) = public
    else:
        public = public_setting == "true"
    label = labels("overview")["eksapi"]
    assert ("private" in label) == private and ("public" in label) == public
    if public:
        ranges = {e: public_endpoint_ranges(e) for e in ("dev", "staging", "prod")}
        assert all(ranges.values()) and not any("0.0.0.0/0" in r for r in ranges.values()), ranges
        assert "allowlist" in label and "pubapi" in labels("network")


def test_the_nat_layout_and_database_version_match_opentofu():
    per_az = {e: "nat_gateway_per_az = true" in tfvars(e, "network") for e in ("dev", "staging", "prod")}
    assert per_az == {"dev": False, "staging": False, "prod": True}, f"NAT per environment changed: {per_az}"
    assert "one per AZ in prod, one shared in dev and staging" in labels("network")["nat"]
    majors = {re.search(r'engine_version\s*=\s*"(\d+)', tfvars(e, "database")).group(1) for e in ("dev", "staging", "prod")}
    assert majors == {"17"} and "PostgreSQL 17" in labels("overview")["rds"]
    endpoints = re.search(r'default\s*=\s*(\[[^\]]*\])', (REPO / "opentofu" / "stacks" / "network" / "variables.tf").read_text()
                          .split('variable "interface_endpoints"', 1)[1]).group(1)
    for service in re.findall(r'"([\w.-]+)"', endpoints):
        assert service in labels("network")["endpoints"], f"VPC endpoint {service} is not drawn"


def test_the_architecture_page_shows_every_view():
    text = (ARCH / "README.md").read_text()
    for view in VIEWS:
        assert f"]({view}.svg)" in text, f"docs/architecture/README.md does not show {view}.svg"


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


RUNBOOKS = DOCS / "runbooks"
ENVS = ("dev", "staging", "prod")


def yaml_load(path):
    import yaml

    return yaml.safe_load(path.read_text())


def scale_row(what: str) -> list[str]:
    for line in (RUNBOOKS / "scale-limits-and-costs.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0].startswith(what):
            return [v.strip() for v in cells[-1].split("·")]
    pytest.fail(f"scale-limits-and-costs.md has no row {what!r}")


def test_the_scale_limits_runbook_cites_the_values_in_the_files():
    hpa = []
    for env in ENVS:
        values = yaml_load(REPO / "apps" / env / "values.yaml")
        text = str(values)
        auto = re.search(r"'autoscaling': \{'minReplicas': (\d+), 'maxReplicas': (\d+)", text)
        hpa.append(f"{auto.group(1)}/{auto.group(2)}")
    assert scale_row("Task API replicas") == hpa
    chart = yaml_load(REPO / "apps" / "base" / "task-api" / "chart" / "values.yaml")["config"]
    assert scale_row("requests in flight") == [f"{chart['maxInflight']} everywhere"]
    assert scale_row("database connections") == [f"{chart['dbMaxConnections']} everywhere"]
    caps = []
    for env in ENVS:
        text = (REPO / "clusters" / env / "infrastructure.yaml").read_text()
        linux = re.search(r'arc_linux_max_runners:\s*"(\d+)"', text).group(1)
        docker = re.search(r'arc_docker_max_runners:\s*"(\d+)"', text).group(1)
        caps.append(f"{linux}/{docker}")
    assert scale_row("runners per scale set") == caps
    pools = [re.search(r"runners = \{.*?max_size\s*=\s*(\d+)", tfvars(e, "cluster"), re.S).group(1) for e in ENVS]
    assert scale_row("runner node pool") == pools
    nat = ["1 per AZ" if "nat_gateway_per_az = true" in tfvars(e, "network") else "1 shared" for e in ENVS]
    assert scale_row("NAT gateways") == nat


@pytest.mark.parametrize("name", ["scale-limits-and-costs.md", "switch-runners.md", "restore-database.md", "rotate-credentials.md"])
def test_runbook_paths_exist(name):
    text = (RUNBOOKS / name).read_text()
    missing = []
    for path in set(re.findall(r"`((?:apps|clusters|infrastructure|opentofu|\.github)/[\w./<>-]+)`", text)):
        for env in ENVS:
            candidate = REPO / path.replace("<env>", env).rstrip("/")
            if not candidate.exists():
                missing.append(path.replace("<env>", env))
    assert not missing, f"{name} cites paths that do not exist: {sorted(set(missing))}"


def test_the_runner_scale_set_names_in_the_runbooks_are_the_registered_ones():
    names = set()
    for manifest in (REPO / "infrastructure" / "configs" / "base" / "arc-runners").glob("*.yaml"):
        names |= set(re.findall(r"runnerScaleSetName:\s*(\S+)", manifest.read_text()))
    assert names, "no runner scale set found"
    documented = {n.replace("${environment}", "<env>") for n in names}
    for doc in (RUNBOOKS / "switch-runners.md", DOCS / "ci-cd.md", DOCS / "walkthrough.md"):
        text = doc.read_text()
        for name in documented:
            assert name in text, f"{doc.name} does not name the scale set {name}"
        for label in re.findall(r"--body \"?(arc-[\w-]+)", text):
            assert any(label.replace(env, "<env>", 1) in documented for env in ENVS), (
                f"{doc.name}: RUNNER label {label} is no registered scale set"
            )


def test_kubectl_and_flux_contexts_are_the_aliases_update_kubeconfig_creates():
    """`aws eks update-kubeconfig` names a context after the cluster ARN unless given --alias."""
    for doc in sorted(RUNBOOKS.glob("*.md")) + [DOCS / "walkthrough.md"]:
        text = doc.read_text()
        contexts = set(re.findall(r"--(?:kube-)?context[= ]([\w<>-]+)", text))
        if not contexts:
            continue
        aliases = set(re.findall(r"update-kubeconfig [^\n]*--alias ([\w<>-]+)", text))
        if "<env>" in aliases:
            aliases |= set(ENVS)
        assert contexts <= aliases, f"{doc.name} uses contexts {sorted(contexts - aliases)} it never creates with --alias"
        for line in re.findall(r"aws eks update-kubeconfig[^\n]*", text):
            assert "--name task-platform-" in line, f"{doc.name}: the clusters are task-platform-<env>: {line}"


def test_the_restore_runbook_never_scales_the_service_to_zero():
    text = (RUNBOOKS / "restore-database.md").read_text()
    assert not re.search(r"kubectl[^\n]*scale[^\n]*--replicas[= ]0", text)
    assert "--manage-master-user-password" in text and "alias/task-platform-<env>-database" in text
    assert "<cluster_name>" not in text
    database = (REPO / "opentofu" / "stacks" / "database" / "main.tf").read_text()
    assert "identifier = local.name" in database and "manage_master_user_password   = true" in database
    assert 'name          = "alias/${local.name}-database"' in database


def docs_with_commands():
    return [DOCS / "walkthrough.md", DOCS / "ci-cd.md", *sorted(RUNBOOKS.glob("*.md"))]


@pytest.mark.parametrize("doc", docs_with_commands(), ids=lambda p: p.name)
def test_every_workflow_the_docs_run_accepts_the_inputs_they_pass(doc):
    import yaml

    for name, args in re.findall(r"gh workflow run (\S+)((?: -f [\w-]+=\S+)*)", doc.read_text()):
        path = REPO / ".github" / "workflows" / name
        assert path.is_file(), f"{doc.name}: `gh workflow run {name}`: no such workflow"
        workflow = yaml.safe_load(path.read_text())
        dispatch = (workflow.get("on", workflow.get(True)) or {}).get("workflow_dispatch")
        assert dispatch is not None, f"{doc.name}: {name} cannot be started by hand"
        inputs = (dispatch or {}).get("inputs") or {}
        for key, value in re.findall(r"-f ([\w-]+)=(\S+)", args):
            assert key in inputs, f"{doc.name}: {name} has no input {key!r}"
            options = inputs[key].get("options")
            if options and "<" not in value:
                assert value in options, f"{doc.name}: {name} -f {key}={value} is not one of {options}"


@pytest.mark.parametrize("doc", docs_with_commands(), ids=lambda p: p.name)
def test_every_script_and_file_the_docs_run_exists(doc):
    text = doc.read_text()
    for path in set(re.findall(r"(?:python3? |--input |< )(\.github/[\w./-]+|\.ci/[\w./-]+)", text)):
        assert (REPO / path).exists(), f"{doc.name} runs {path}, which does not exist"
    for label in re.findall(r"gh pr list --label (\S+)", text):
        labels = " ".join((REPO / ".github" / "workflows" / w).read_text() for w in ("release.yaml", "promote.yaml"))
        env = label.split("/", 1)[1]
        assert f"labels: release, {label}" in labels or "env/${{ env.TARGET }}" in labels and env in ("staging", "prod"), (
            f"{doc.name}: no workflow labels its pull requests {label}"
        )


def test_the_walkthrough_configures_the_secrets_ci_cd_md_lists():
    documented = set(re.findall(r"gh secret set ([A-Z_]+)", (DOCS / "ci-cd.md").read_text()))
    walked = set(re.findall(r"gh secret set ([A-Z_]+)", (DOCS / "walkthrough.md").read_text()))
    walked |= set(re.findall(r"`([A-Z][A-Z_]+_KEY)`", (DOCS / "walkthrough.md").read_text()))
    assert documented <= walked, f"the walkthrough never sets {sorted(documented - walked)}"
