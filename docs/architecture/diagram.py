"""The AWS architecture of the task platform, as code.

Renders `architecture.png` (and `architecture.dot`, the exact graph it was drawn from) next to
this file. `docs/tests/test_docs.py` re-runs it and fails when the committed files drift.

    python docs/architecture/diagram.py [OUTPUT_DIR]
"""

import itertools
import os
import sys

from diagrams import Cluster, Diagram, Edge, Node
from diagrams.aws.compute import EC2AutoScaling, EC2SpotInstance, ECR, EKS
from diagrams.aws.database import RDSPostgresqlInstance
from diagrams.aws.management import CloudwatchLogs
from diagrams.aws.network import ALB, InternetGateway, NATGateway, Endpoint, Route53
from diagrams.aws.security import ACM, IAMRole, KMS, SecretsManager
from diagrams.aws.storage import S3
from diagrams.aws.general import Users
from diagrams.onprem.ci import GithubActions
from diagrams.onprem.gitops import Flux
from diagrams.onprem.logging import Loki
from diagrams.onprem.monitoring import Grafana, Prometheus
from diagrams.onprem.tracing import Tempo
from diagrams.onprem.vcs import Github
from diagrams.k8s.compute import Pod

# diagrams names graph nodes with random UUIDs; a counter makes the output reproducible,
# so the committed image can be checked against its source.
_ids = itertools.count(1)
Node._rand_id = staticmethod(lambda: f"n{next(_ids):03d}")

HTTPS = dict(label="HTTPS (TLS 1.2+)", color="darkgreen")
TLS_PG = dict(label="PostgreSQL over TLS :5432", color="darkblue")
OIDC = dict(label="OIDC token → STS", color="purple", style="dashed")
GITOPS = dict(label="git pull (SSH deploy key)", color="orange", style="bold")
TELEMETRY = dict(color="gray40", style="dotted")

GRAPH = {
    "fontsize": "13",
    "splines": "spline",
    "nodesep": "0.55",
    "ranksep": "0.9",
    "pad": "0.4",
}


def render(output_dir: str) -> None:
    base = os.path.join(output_dir, "architecture")
    with Diagram(
        "task-platform on AWS (one environment: dev, staging or prod)",
        filename=base,
        outformat=["png", "dot"],
        show=False,
        direction="LR",
        graph_attr=GRAPH,
    ):
        users = Users("REST clients\n(bearer JWT from the IdP)")
        dns = Route53("Route 53\ntasks.<domain>")

        with Cluster("GitHub"):
            repo = Github("example-org/task-platform\n(clusters/<env>, apps, infrastructure)")
            actions = GithubActions("Actions workflows\nCI · release · tofu · promote")

        with Cluster("AWS account, one region"):
            sts = IAMRole("GitHub OIDC provider\n+ role per environment\n(aud=sts, sub=repo:…:environment:<env>)")
            ecr = ECR("ECR\nimage + OCI chart\n(immutable tags, signed)")
            state = S3("S3 state bucket\n(OpenTofu, lockfile)")
            secrets = SecretsManager("Secrets Manager\nDB URL, GitHub App")
            kms = KMS("KMS keys\nEKS secrets, RDS, ECR")
            acm = ACM("ACM certificate\ntasks.<domain>")
            cw = CloudwatchLogs("CloudWatch Logs\nVPC flow logs,\ncontrol-plane logs")

            with Cluster("VPC 10.x/16 over 3 AZs"):
                with Cluster("public subnets (3 AZs)"):
                    igw = InternetGateway("Internet gateway")
                    alb = ALB("ALB\nHTTPS :443, HTTP→HTTPS\n(ACM certificate)")
                    nat = NATGateway("NAT gateways\n(1 per AZ in prod,\n1 in dev)")
                with Cluster("private subnets (3 AZs)"):
                    endpoints = Endpoint("VPC endpoints\nS3, ECR, STS,\nSecrets Manager, logs")
                    with Cluster("EKS (private API endpoint, KMS-encrypted secrets)"):
                        control = EKS("EKS control plane")
                        with Cluster("node pool: system"):
                            flux = Flux("Flux controllers\nreconcile clusters/<env>")
                            controllers = EC2AutoScaling("ALB controller,\nExternal Secrets,\ncert-manager, autoscaler")
                        with Cluster("node pool: apps (on-demand)"):
                            api = Pod("task-api replicas\n(HPA, PDB, NetworkPolicy)")
                            with Cluster("observability"):
                                prom = Prometheus("kube-prometheus-stack\n+ Alertmanager")
                                loki = Loki("Loki\n(+ Alloy collector)")
                                tempo = Tempo("Tempo\n(+ OTel collector)")
                                grafana = Grafana("Grafana")
                        with Cluster("node pool: runners (spot, tainted, 0..max)"):
                            runners = EC2SpotInstance("ARC runner scale sets\narc-linux, arc-linux-docker\n(ephemeral)")
                with Cluster("database subnets (3 AZs)"):
                    rds = RDSPostgresqlInstance("RDS PostgreSQL\nMulti-AZ in prod, encrypted,\nrds.force_ssl=1")

        users >> Edge(label="DNS") >> dns
        users >> Edge(**HTTPS) >> igw >> alb
        alb >> Edge(label="HTTP :8080 (in VPC, NetworkPolicy)", color="darkgreen") >> api
        api >> Edge(**TLS_PG) >> rds
        api >> Edge(label="OIDC discovery + JWKS (HTTPS)", color="purple") >> nat
        api >> Edge(label="metrics :9090 (scrape)", **TELEMETRY) >> prom
        api >> Edge(label="logs (stdout → Alloy)", **TELEMETRY) >> loki
        api >> Edge(label="traces OTLP :4317", **TELEMETRY) >> tempo
        [prom, loki, tempo] >> Edge(**TELEMETRY) >> grafana
        controllers >> Edge(label="AWS APIs via endpoints", color="gray30") >> endpoints
        controllers >> Edge(label="sync secrets", color="gray30") >> secrets
        secrets >> Edge(label="encrypted by", style="dashed") >> kms
        rds >> Edge(style="dashed") >> kms
        control >> Edge(**TELEMETRY) >> cw

        actions >> Edge(**OIDC) >> sts
        sts >> Edge(label="short-lived creds: tofu plan/apply", color="purple") >> state
        sts >> Edge(label="push image + chart", color="purple") >> ecr
        actions >> Edge(label="jobs (runs-on: vars.RUNNER)", color="steelblue") >> runners
        runners >> Edge(label="HTTPS via NAT", color="steelblue") >> nat
        nat >> igw
        flux >> Edge(**GITOPS) >> repo
        flux >> Edge(label="pull chart + image (OCI)", color="orange") >> ecr
        flux >> Edge(label="apply", color="orange") >> control
        actions >> Edge(label="promotion PR merged", color="orange", style="dashed") >> repo
        alb >> Edge(label="TLS cert", style="dashed") >> acm


if __name__ == "__main__":
    render(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
