"""The Pod Security Standards (baseline and restricted) as the pod-security-admission plugin
enforces them, for one Kubernetes minor.

Follows kubernetes/pod-security-admission's policy/check_*.go: every check there is one
function here, with the same version gates, the same containers visited (init, regular and
ephemeral) and the same pod/container precedence. A namespace label
`pod-security.kubernetes.io/enforce: <level>` admits a pod only if every check of that level
and of the levels below allows it (restricted = baseline + restricted checks, where a
restricted check overrides its baseline counterpart).

Only the parts of the rules that a manifest can violate are modelled: the plugin's exemptions
(usernames, runtime classes, namespaces) are not used by this platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

LEVELS = ("privileged", "baseline", "restricted")

# check_capabilities_baseline.go
BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
     "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)
# check_sysctls.go, by the minor that added them.
_SYSCTLS = (
    ((1, 0), {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
              "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}),
    ((1, 27), {"net.ipv4.ip_local_reserved_ports"}),
    ((1, 29), {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
               "net.ipv4.tcp_keepalive_probes"}),
    ((1, 32), {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}),
    ((1, 37), {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}),
)
# check_seLinuxOptions.go
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}
_SELINUX_TYPES_1_31 = _SELINUX_TYPES | {"container_engine_t"}
# check_restrictedVolumes.go
RESTRICTED_VOLUME_SOURCES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret"}
)
_VOLUME_META = {"name"}
_SECCOMP_ANNOTATION_POD = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_ANNOTATION_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(container: dict) -> dict:
    return container.get("securityContext") or {}


def _pod_sc(spec: dict) -> dict:
    return spec.get("securityContext") or {}


def _windows(spec: dict) -> bool:
    return (spec.get("os") or {}).get("name") == "windows"


def _user_namespace(spec: dict) -> bool:
    # relaxPolicyForUserNamespacePod (1.35+): hostUsers: false relaxes the user checks.
    return spec.get("hostUsers") is False


# --- baseline -----------------------------------------------------------------------------


def _host_process(meta, spec, version):
    bad = [c["name"] for c in _containers(spec) if (_sc(c).get("windowsOptions") or {}).get("hostProcess") is True]
    if (_pod_sc(spec).get("windowsOptions") or {}).get("hostProcess") is True:
        bad.insert(0, "pod")
    return f"{bad} must not set securityContext.windowsOptions.hostProcess=true" if bad else None


def _host_namespaces(meta, spec, version):
    bad = [f for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return f"{', '.join(f + '=true' for f in bad)}" if bad else None


def _privileged(meta, spec, version):
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("privileged") is True]
    return f"containers {bad} must not set securityContext.privileged=true" if bad else None


def _capabilities_baseline(meta, spec, version):
    bad = sorted(
        {cap for c in _containers(spec) for cap in (_sc(c).get("capabilities") or {}).get("add") or []}
        - BASELINE_CAPABILITIES
    )
    return f"must not add capabilities {bad}" if bad else None


def _host_path_volumes(meta, spec, version):
    bad = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    return f"hostPath volumes {bad}" if bad else None


def _host_ports(meta, spec, version):
    bad = sorted({p["hostPort"] for c in _containers(spec) for p in c.get("ports") or [] if p.get("hostPort")})
    return f"hostPort {bad}" if bad else None


def _app_armor(meta, spec, version):
    bad = []
    profile = (_pod_sc(spec).get("appArmorProfile") or {}).get("type")
    if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
        bad.append(f"pod: {profile}")
    for c in _containers(spec):
        profile = (_sc(c).get("appArmorProfile") or {}).get("type")
        if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{c['name']}: {profile}")
    for key, value in ((meta or {}).get("annotations") or {}).items():
        if key.startswith(_APPARMOR_ANNOTATION) and value and value != "runtime/default" and not value.startswith("localhost/"):
            bad.append(f"{key}={value}")
    return f"forbidden AppArmor profiles {bad}" if bad else None


def _se_linux(meta, spec, version):
    allowed = _SELINUX_TYPES_1_31 if version >= (1, 31) else _SELINUX_TYPES
    bad = []

    def invalid(options: dict) -> bool:
        return options.get("type", "") not in allowed or bool(options.get("user")) or bool(options.get("role"))

    if "seLinuxOptions" in _pod_sc(spec) and invalid(_pod_sc(spec)["seLinuxOptions"] or {}):
        bad.append("pod")
    bad += [c["name"] for c in _containers(spec) if "seLinuxOptions" in _sc(c) and invalid(_sc(c)["seLinuxOptions"] or {})]
    return f"{bad} set forbidden seLinuxOptions" if bad else None


def _proc_mount(meta, spec, version):
    if version >= (1, 35) and _user_namespace(spec):
        return None
    return _proc_mount_strict(meta, spec, version)


def _proc_mount_strict(meta, spec, version):
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("procMount") not in (None, "Default")]
    return f"containers {bad} must not set securityContext.procMount" if bad else None


def _seccomp_baseline(meta, spec, version):
    bad = []
    if version < (1, 19):
        return None
    profile = (_pod_sc(spec).get("seccompProfile") or {}).get("type")
    if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
        bad.append("pod")
    for c in _containers(spec):
        profile = (_sc(c).get("seccompProfile") or {}).get("type")
        if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
            bad.append(c["name"])
    return f"{bad} must not set securityContext.seccompProfile.type to Unconfined" if bad else None


def _sysctls(meta, spec, version):
    allowed = set().union(*(names for since, names in _SYSCTLS if version >= since))
    bad = [s["name"] for s in _pod_sc(spec).get("sysctls") or [] if s.get("name") not in allowed]
    return f"forbidden sysctls {bad}" if bad else None


def _host_probes(meta, spec, version):
    if version < (1, 34):
        return None
    bad = []
    for c in _containers(spec):
        handlers = [c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(h) for h in ("postStart", "preStop")]
        for handler in filter(None, handlers):
            for action in ("httpGet", "tcpSocket"):
                if (handler.get(action) or {}).get("host"):
                    bad.append(c["name"])
    return f"containers {sorted(set(bad))} use probe or lifecycle hosts" if bad else None


# --- restricted ---------------------------------------------------------------------------


def _restricted_volumes(meta, spec, version):
    bad = []
    for volume in spec.get("volumes") or []:
        sources = set(volume) - _VOLUME_META
        if not sources or not sources <= RESTRICTED_VOLUME_SOURCES:
            bad.append(f"{volume['name']} ({', '.join(sorted(sources)) or 'no source'})")
    return f"restricted volume types: {bad}" if bad else None


def _privilege_escalation(meta, spec, version):
    if version >= (1, 25) and _windows(spec):
        return None
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    return f"containers {bad} must set securityContext.allowPrivilegeEscalation=false" if bad else None


def _run_as_non_root(meta, spec, version):
    if version >= (1, 35) and _user_namespace(spec):
        return None
    pod = _pod_sc(spec).get("runAsNonRoot")
    if pod is False:
        return "pod must not set securityContext.runAsNonRoot=false"
    explicit = [c["name"] for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    if explicit:
        return f"containers {explicit} must not set securityContext.runAsNonRoot=false"
    implicit = [c["name"] for c in _containers(spec) if _sc(c).get("runAsNonRoot") is None and pod is not True]
    return f"pod or containers {implicit} must set securityContext.runAsNonRoot=true" if implicit else None


def _run_as_user(meta, spec, version):
    if version < (1, 23):
        return None
    if version >= (1, 35) and _user_namespace(spec):
        return None
    bad = ["pod"] if _pod_sc(spec).get("runAsUser") == 0 else []
    bad += [c["name"] for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    return f"{bad} must not set runAsUser=0" if bad else None


def _seccomp_restricted(meta, spec, version):
    if version >= (1, 25) and _windows(spec):
        return None
    explicit = _seccomp_baseline(meta, spec, version)
    if explicit:
        return explicit
    pod_set = (_pod_sc(spec).get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    implicit = [c["name"] for c in _containers(spec) if not _sc(c).get("seccompProfile") and not pod_set]
    if implicit:
        return f'pod or containers {implicit} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
    return None


def _capabilities_restricted(meta, spec, version):
    if version >= (1, 25) and _windows(spec):
        return None
    missing_drop, adding = [], []
    for c in _containers(spec):
        caps = _sc(c).get("capabilities")
        if caps is None:
            missing_drop.append(c["name"])
            continue
        if "ALL" not in (caps.get("drop") or []):
            missing_drop.append(c["name"])
        if any(cap != "NET_BIND_SERVICE" for cap in caps.get("add") or []):
            adding.append(c["name"])
    details = []
    if missing_drop:
        details.append(f'containers {missing_drop} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"containers {adding} must not add capabilities other than NET_BIND_SERVICE")
    return "; ".join(details) or None


Check = Callable[[dict, dict, tuple[int, int]], "str | None"]

# (id, level, check, ids of baseline checks it overrides)
CHECKS: tuple[tuple[str, str, Check, tuple[str, ...]], ...] = (
    ("windowsHostProcess", "baseline", _host_process, ()),
    ("hostNamespaces", "baseline", _host_namespaces, ()),
    ("privileged", "baseline", _privileged, ()),
    ("capabilities_baseline", "baseline", _capabilities_baseline, ()),
    ("hostPathVolumes", "baseline", _host_path_volumes, ()),
    ("hostPorts", "baseline", _host_ports, ()),
    ("appArmorProfile", "baseline", _app_armor, ()),
    ("seLinuxOptions", "baseline", _se_linux, ()),
    ("procMount", "baseline", _proc_mount, ()),
    ("seccompProfile_baseline", "baseline", _seccomp_baseline, ()),
    ("sysctls", "baseline", _sysctls, ()),
    ("hostProbesAndHostLifecycle", "baseline", _host_probes, ()),
    ("restrictedVolumes", "restricted", _restricted_volumes, ("hostPathVolumes",)),
    ("allowPrivilegeEscalation", "restricted", _privilege_escalation, ()),
    ("runAsNonRoot", "restricted", _run_as_non_root, ()),
    ("runAsUser", "restricted", _run_as_user, ()),
    ("seccompProfile_restricted", "restricted", _seccomp_restricted, ("seccompProfile_baseline",)),
    ("capabilities_restricted", "restricted", _capabilities_restricted, ("capabilities_baseline",)),
)
# Restricted's procMount check (1.35+) does not relax for user-namespace pods.
_RESTRICTED_SINCE = {("procMount_restricted", (1, 35), _proc_mount_strict, ("procMount",))}


def evaluate(pod_metadata: dict | None, pod_spec: dict, level: str, kubernetes_version: str) -> list[Violation]:
    """Violations of `level` (privileged/baseline/restricted) for one pod at one minor."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}")
    if level == "privileged":
        return []
    version = _minor(kubernetes_version)
    checks = [(i, lvl, fn, over) for i, lvl, fn, over in CHECKS if LEVELS.index(lvl) <= LEVELS.index(level)]
    if level == "restricted":
        checks += [(i, "restricted", fn, over) for i, since, fn, over in _RESTRICTED_SINCE if version >= since]
    overridden = {o for _, _, _, over in checks for o in over}
    violations = []
    for check_id, _, function, _ in checks:
        if check_id in overridden:
            continue
        detail = function(pod_metadata or {}, pod_spec, version)
        if detail:
            violations.append(Violation(check_id, detail))
    return violations


# Workload kinds and where their pod template sits.
_TEMPLATE_PATHS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}


def pod_template(obj: dict) -> tuple[dict, dict] | None:
    """(metadata, spec) of the pod an object creates, for the workload kinds above."""
    path = _TEMPLATE_PATHS.get(obj.get("kind"))
    if path is None:
        return None
    node = obj
    for key in path:
        node = (node or {}).get(key) or {}
    return node.get("metadata") or {}, node.get("spec") or {}


def enforced_level(namespace: dict | None) -> str:
    """The level a Namespace enforces; an unlabelled namespace gets the cluster default,
    which on EKS is privileged."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    return labels.get("pod-security.kubernetes.io/enforce", "privileged")
