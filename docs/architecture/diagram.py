"""The architecture of the task platform as code: four Graphviz views, no icons, no paths.

    python docs/architecture/diagram.py [OUTPUT_DIR]

writes `<view>.dot` (the graph, byte-for-byte the same on every machine) and `<view>.svg`
(rendered by Graphviz `dot`) for each view:

    overview   the whole platform at page width: people, GitHub, AWS, one environment
    network    one environment's VPC: subnets per AZ, gateways, endpoints, node pools, the EKS API
    identity   how a workflow job gets AWS credentials: GitHub OIDC token → STS → role, in order
    gitops     how a change travels from a branch to prod: checks, release, pull requests, Flux

`docs/tests/test_docs.py` regenerates the .dot files and compares them, renders each committed
.dot and compares the drawn labels with the committed .svg (coordinates and fonts depend on the
machine's Graphviz, the labels do not), and checks the facts the pictures state against the
code (the EKS endpoint, Flux's transport, who connects to whom).
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
FONT = "Helvetica"

STYLE = {
    "person": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff2cc", "color": "#b58b00"},
    "github": {"shape": "box", "style": "rounded,filled", "fillcolor": "#eeeeee", "color": "#444444"},
    "aws": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fde6cf", "color": "#c7620a"},
    "k8s": {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbe8fb", "color": "#2f5ea8"},
    "data": {"shape": "cylinder", "style": "filled", "fillcolor": "#dfeedd", "color": "#3d7a35"},
    "net": {"shape": "box", "style": "filled", "fillcolor": "#f4f4f4", "color": "#777777"},
    "internet": {"shape": "ellipse", "style": "filled", "fillcolor": "#ffffff", "color": "#777777"},
}
FLOW = {
    "traffic": {"color": "#1f7a1f"},
    "identity": {"color": "#7b2cbf", "style": "dashed"},
    "gitops": {"color": "#c7620a", "penwidth": "1.6"},
    "ci": {"color": "#2f5ea8"},
    "data": {"color": "#1f4e8c"},
    "people": {"color": "#b58b00"},
    "quiet": {"color": "#888888", "style": "dotted"},
}


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def attrs(values: dict) -> str:
    return ", ".join(f"{k}={quote(str(v))}" for k, v in values.items())


@dataclass
class View:
    name: str
    title: str
    graph: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # id -> label
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, label)
    clusters: dict[str, str] = field(default_factory=dict)  # id -> label
    depth: int = 1

    def _emit(self, line: str) -> None:
        self.lines.append("  " * self.depth + line)

    def node(self, node_id: str, label: str, kind: str, **extra) -> str:
        assert node_id not in self.nodes, node_id
        self.nodes[node_id] = label
        self._emit(f"{node_id} [{attrs({'label': label, **STYLE[kind], **extra})}];")
        return node_id

    def edge(self, a: str, b: str, label: str = "", flow: str = "quiet", **extra) -> None:
        assert a in self.nodes and b in self.nodes, (a, b)
        self.edges.append((a, b, label))
        values = {**FLOW[flow], **extra}
        if label:
            values = {"label": label, **values}
        self._emit(f"{a} -> {b} [{attrs(values)}];")

    @contextmanager
    def cluster(self, cluster_id: str, label: str, color: str = "#999999", fill: str = "#ffffff"):
        self.clusters[cluster_id] = label
        self._emit(f"subgraph cluster_{cluster_id} {{")
        self.depth += 1
        self._emit(f"graph [{attrs({'label': label, 'color': color, 'bgcolor': fill, 'style': 'rounded', 'labeljust': 'l'})}];")
        try:
            yield
        finally:
            self.depth -= 1
            self._emit("}")

    def rank_same(self, *node_ids: str) -> None:
        self._emit("{ rank=same; " + "; ".join(node_ids) + "; }")

    def dot(self) -> str:
        graph = {"label": self.title, "labelloc": "t", "fontsize": "20", "fontname": FONT,
                 "newrank": "true", "compound": "true", **self.graph}
        head = [
            f"digraph {self.name} {{",
            f"  graph [{attrs(graph)}];",
            f"  node [{attrs({'fontname': FONT, 'fontsize': '14', 'margin': '0.15,0.08'})}];",
            f"  edge [{attrs({'fontname': FONT, 'fontsize': '12'})}];",
        ]
        return "\n".join(head + self.lines + ["}"]) + "\n"


def overview() -> View:
    v = View("overview", "task-platform: people, GitHub, AWS (one environment of dev, staging, prod)",
             graph={"rankdir": "TB", "nodesep": "0.25", "ranksep": "0.4"})
    v.node("developer", "Developer", "person")
    v.node("approver", "Release approver", "person")
    v.node("clients", "REST clients\n(bearer JWT)", "person")
    with v.cluster("github", "GitHub", color="#444444", fill="#fafafa"):
        v.node("repo", "repository\nmain + short branches", "github")
        v.node("actions", "Actions\nci, release,\npromote, opentofu", "github")
        v.node("ghoidc", "OIDC token\nissuer", "github")
    with v.cluster("aws", "AWS account, one region", color="#c7620a", fill="#fffaf5"):
        v.node("sts", "STS", "aws")
        v.node("roles", "IAM roles\nplan, apply, release", "aws")
        v.node("awsapi", "AWS APIs\nVPC, EKS, RDS", "aws")
        v.node("ecr", "ECR\nimage + chart", "aws")
        with v.cluster("vpc", "VPC, 3 AZs", color="#777777"):
            v.node("alb", "ALB\nHTTPS 443", "net")
            v.node("eksapi", "EKS API\nprivate + public\n(CIDR allowlist)", "aws")
            with v.cluster("eks", "EKS task-platform-<env>", color="#2f5ea8", fill="#f5f9ff"):
                v.node("flux", "Flux", "k8s")
                v.node("arc", "ARC runners", "k8s")
                v.node("api", "task-api", "k8s")
            v.node("rds", "RDS\nPostgreSQL 17", "data")
    v.edge("developer", "repo", "pull request", "people")
    v.edge("approver", "repo", "approve", "people")
    v.edge("repo", "actions", "events", "ci")
    v.edge("arc", "actions", "poll for jobs\n(outbound)", "ci")
    v.edge("actions", "ghoidc", "token", "identity")
    v.edge("actions", "sts", "AssumeRole-\nWithWebIdentity", "identity")
    v.edge("sts", "roles", "credentials", "identity")
    v.edge("roles", "awsapi", "OpenTofu", "identity")
    v.edge("roles", "ecr", "release", "identity")
    v.edge("roles", "eksapi", "OpenTofu\nplatform", "identity")
    v.edge("flux", "repo", "git, HTTPS", "gitops")
    v.edge("flux", "ecr", "chart", "gitops")
    v.edge("flux", "eksapi", "apply", "gitops")
    v.edge("clients", "alb", "HTTPS", "traffic")
    v.edge("alb", "api", "8080", "traffic")
    v.edge("api", "rds", "TLS 5432", "data")
    v.rank_same("developer", "approver", "clients")
    return v


def network() -> View:
    v = View("network", "network of one environment: VPC 10.x.0.0/16 over three availability zones",
             graph={"rankdir": "TB", "nodesep": "0.35", "ranksep": "0.5"})
    v.node("internet", "Internet\nclients, the IdP's JWKS, GitHub", "internet")
    v.node("ci", "OpenTofu runners, operators\n(static egress, allowlisted)", "person")
    with v.cluster("vpc", "VPC", color="#777777"):
        v.node("igw", "Internet gateway", "net")
        with v.cluster("public", "public subnets (one /24 per AZ)", color="#1f7a1f"):
            v.node("alb", "ALB (AWS Load Balancer Controller)\nHTTPS 443, ACM certificate; HTTP → HTTPS", "net")
            v.node("nat", "NAT gateway\none per AZ in prod, one shared in dev and staging", "net")
        with v.cluster("private", "private subnets (one /20 per AZ)", color="#2f5ea8"):
            v.node("endpoints", "VPC endpoints\ninterface: ecr.api, ecr.dkr, sts, eks-auth, logs, secretsmanager\ngateway: s3", "net")
            v.node("eniapi", "EKS API, private endpoint\n(ENIs in the private subnets)", "aws")
            v.node("system", "node pool system\nFlux, controllers, External Secrets", "k8s")
            v.node("apps", "node pool apps (on-demand)\ntask-api, observability", "k8s")
            v.node("runners", "node pool runners (spot, tainted, 0..max)\nARC ephemeral runners", "k8s")
        with v.cluster("database", "database subnets (one /24 per AZ)", color="#3d7a35"):
            v.node("rds", "RDS PostgreSQL 17\nMulti-AZ in prod, encrypted, rds.force_ssl=1\nSG: apps nodes only", "data")
    v.node("pubapi", "EKS API, public endpoint\nadmits only the allowlisted ranges", "aws")
    v.edge("internet", "igw", "HTTPS 443", "traffic")
    v.edge("igw", "alb", "", "traffic")
    v.edge("alb", "apps", "HTTP 8080 to pod IPs\n(NetworkPolicy)", "traffic")
    v.edge("apps", "rds", "PostgreSQL over TLS 5432", "data")
    v.edge("apps", "nat", "OIDC discovery + JWKS", "quiet")
    v.edge("runners", "nat", "GitHub (poll, downloads)", "ci")
    v.edge("system", "nat", "GitHub (git over HTTPS)", "gitops")
    v.edge("nat", "igw", "", "quiet")
    for pool in ("system", "apps", "runners"):
        v.edge(pool, "endpoints", "", "quiet")
        v.edge(pool, "eniapi", "", "quiet")
    v.edge("ci", "pubapi", "kubectl, OpenTofu platform stage", "identity")
    v.rank_same("system", "apps", "runners")
    return v


def identity() -> View:
    v = View("identity", "identity federation: a workflow job gets AWS credentials, no stored keys (read top to bottom)",
             graph={"rankdir": "TB", "nodesep": "0.25", "ranksep": "0.35", "splines": "line"})
    actors = [
        ("job", "workflow job\n(environment: <env>,\npermissions: id-token: write)", "github"),
        ("issuer", "GitHub OIDC issuer\ntoken.actions.githubusercontent.com", "github"),
        ("sts", "AWS STS", "aws"),
        ("role", "IAM role of the environment\ntrust: aud sts.amazonaws.com,\nsub repo:example-org/task-platform:environment:<env>", "aws"),
        ("service", "AWS service\nECR, S3 state, EKS, …", "aws"),
    ]
    steps = [
        ("job", "issuer", "1. request an ID token for audience sts.amazonaws.com"),
        ("issuer", "job", "2. signed JWT: iss, aud, sub = repo:…:environment:<env>, ref, sha"),
        ("job", "sts", "3. AssumeRoleWithWebIdentity(role ARN from vars, JWT)"),
        ("sts", "issuer", "4. fetch the issuer's JWKS, verify the signature"),
        ("sts", "role", "5. evaluate the trust policy: aud and sub must match exactly"),
        ("sts", "job", "6. temporary credentials (one session, about an hour)"),
        ("job", "service", "7. API calls, within the role's policy and boundary"),
    ]
    # A sequence diagram in Graphviz: one column per participant, one row per message.
    rows = len(steps) + 1
    for actor, label, kind in actors:
        with v.cluster(f"lane_{actor}", "", color="#ffffff"):
            v.node(f"{actor}_0", label, kind)
            for row in range(1, rows):
                v.node(f"{actor}_{row}", "", "net", shape="point", width="0.06", color="#999999")
            for row in range(rows - 1):
                v.edge(f"{actor}_{row}", f"{actor}_{row + 1}", "", "quiet", arrowhead="none", weight="100")
    for row, (a, b, label) in enumerate(steps, 1):
        v.edge(f"{a}_{row}", f"{b}_{row}", label, "identity", constraint="false", style="solid")
        v.rank_same(*[f"{actor}_{row}" for actor, _, _ in actors])
    return v


def gitops() -> View:
    v = View("gitops", "how a change reaches prod: trunk-based, every deployment a merged pull request",
             graph={"rankdir": "LR", "nodesep": "0.3", "ranksep": "0.45"})
    v.node("developer", "Developer", "person")
    v.node("approver", "Release approver", "person")
    with v.cluster("github", "GitHub", color="#444444", fill="#fafafa"):
        v.node("branch", "short feature branch\npull request", "github")
        v.node("checks", "required checks\nrust, platform, audit,\nchart-version, image\n+ code owner review", "github")
        v.node("main", "main", "github")
        v.node("release", "release.yaml\nimage task-api:<sha>\nchart <version>", "github")
        v.node("devpr", "bot PR release/dev\napps/dev/release.yaml\n(auto-merge)", "github")
        v.node("promote", "promote.yaml\nPR dev → staging,\nstaging → prod", "github")
    v.node("ecr", "ECR\nimage + OCI chart", "aws")
    with v.cluster("clusters", "Flux in each cluster, reading its own path of main", color="#2f5ea8", fill="#f5f9ff"):
        v.node("fluxdev", "dev\nclusters/dev + apps/dev", "k8s")
        v.node("fluxstaging", "staging\nclusters/staging + apps/staging", "k8s")
        v.node("fluxprod", "prod\nclusters/prod + apps/prod", "k8s")
    v.edge("developer", "branch", "push", "people")
    v.edge("branch", "checks", "", "ci")
    v.edge("checks", "main", "squash merge", "ci")
    v.edge("main", "release", "push", "ci")
    v.edge("release", "ecr", "push, sign", "ci")
    v.edge("release", "devpr", "open", "ci")
    v.edge("devpr", "main", "merge on green", "ci")
    v.edge("promote", "main", "merge after\nreview", "ci")
    v.edge("approver", "promote", "review, merge", "people")
    for env in ("dev", "staging", "prod"):
        v.edge(f"flux{env}", "main", "git pull, HTTPS", "gitops")
        v.edge(f"flux{env}", "ecr", "", "gitops")
    return v


VIEWS = [overview, network, identity, gitops]


def render(output_dir: Path) -> list[Path]:
    written = []
    for make in VIEWS:
        view = make()
        dot_path = output_dir / f"{view.name}.dot"
        dot_path.write_text(view.dot(), encoding="utf-8")
        svg = subprocess.run(["dot", "-Tsvg", str(dot_path)], capture_output=True, check=True).stdout
        (output_dir / f"{view.name}.svg").write_bytes(svg)
        written += [dot_path, output_dir / f"{view.name}.svg"]
    return written


if __name__ == "__main__":
    for path in render(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
