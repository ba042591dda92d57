"""Every pod an environment creates, with the namespace it is admitted in.

- Pod templates of the workloads in the tree and in every chart render (Deployments,
  StatefulSets, DaemonSets, Jobs, CronJobs, Pods; Helm hooks included, Helm tests only when
  the release runs them: releases.py drops them otherwise).
- Pods that controllers create from templates, built the way those controllers build them:
  - ARC (actions-runner-controller, controllers/actions.github.com/resourcebuilder.go):
    the listener pod, created in the controller's namespace from the AutoscalingRunnerSet's
    spec.listenerTemplate merged into the controller's default listener pod
    (mergeListenerPodWithTemplate: the template's pod securityContext replaces the default's,
    the `listener` container takes the template container's securityContext, other template
    containers are appended); the runner pod, the AutoscalingRunnerSet's spec.template as is,
    in the scale set's namespace;
  - the kubernetes-mode container hook (actions/runner-container-hooks, createJobPod): a job
    pod per job, in the runner's namespace, with the hook's own fs-init container, emptyDir
    volumes and fsGroup, and the pod template the runner's ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE
    names (a ConfigMap mounted into the runner) merged over it; the job container `$job` takes
    the workflow's image.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import yaml

import pod_security

ARC_GROUP = "actions.github.com"


@dataclass
class PodUnderTest:
    where: str  # what creates it, for messages
    namespace: str
    metadata: dict
    spec: dict


def _listener_pod(runner_set: dict, controller_namespace: str) -> PodUnderTest:
    template = copy.deepcopy(runner_set["spec"].get("listenerTemplate") or {})
    tmpl_spec = template.get("spec") or {}
    listener = {
        "name": "listener",
        "image": "ghcr.io/actions/gha-runner-scale-set-controller",
        "command": ["/ghalistener"],
        "volumeMounts": [{"name": "listener-config", "mountPath": "/etc/gha-listener", "readOnly": True}],
    }
    spec = {
        "serviceAccountName": "listener",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "containers": [listener],
        "volumes": [{"name": "listener-config", "secret": {"secretName": "listener-config"}}],
        "restartPolicy": "Never",
    }
    if template:
        for container in tmpl_spec.get("containers") or []:
            if container.get("name") == "listener":
                listener["securityContext"] = container.get("securityContext")
                for key in ("image", "command"):
                    if container.get(key):
                        listener[key] = container[key]
                for key in ("resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle"):
                    listener[key] = container.get(key)
                for key in ("env", "ports", "volumeMounts", "args", "envFrom", "volumeDevices"):
                    listener[key] = (listener.get(key) or []) + (container.get(key) or [])
            else:
                spec["containers"].append(container)
        spec["volumes"] += tmpl_spec.get("volumes") or []
        for key in ("nodeSelector", "restartPolicy", "imagePullSecrets"):
            if tmpl_spec.get(key):
                spec[key] = tmpl_spec[key]
        # Copied unconditionally (nil included): the default pod has no securityContext of its own.
        for key in ("initContainers", "ephemeralContainers", "hostNetwork", "hostPID", "hostIPC", "securityContext",
                    "tolerations", "affinity", "os", "hostUsers", "runtimeClassName"):
            spec[key] = tmpl_spec.get(key)
        spec = {k: v for k, v in spec.items() if v is not None}
        listener_clean = {k: v for k, v in listener.items() if v is not None}
        spec["containers"][0] = listener_clean
    name = runner_set["metadata"]["name"]
    return PodUnderTest(f"ARC listener of AutoscalingRunnerSet {runner_set['metadata']['namespace']}/{name}",
                        controller_namespace, template.get("metadata") or {}, spec)


def _hook_template(runner_spec: dict, configmaps: dict[tuple[str, str], dict], namespace: str) -> dict | None:
    for container in runner_spec.get("containers") or []:
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        path = env.get("ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE")
        if not path:
            continue
        for mount in container.get("volumeMounts") or []:
            if path.startswith(mount["mountPath"].rstrip("/") + "/"):
                volume = next(v for v in runner_spec.get("volumes") or [] if v["name"] == mount["name"])
                configmap = configmaps.get((namespace, (volume.get("configMap") or {}).get("name")))
                if configmap is None:
                    raise LookupError(f"hook template volume {mount['name']} is not a ConfigMap of the tree")
                key = path[len(mount["mountPath"].rstrip("/")) + 1 :]
                return yaml.safe_load(configmap["data"][key])
        raise LookupError(f"hook template {path} is not mounted into the runner")
    return None


def _job_pod(template: dict, where: str, namespace: str) -> PodUnderTest:
    spec = copy.deepcopy(template.get("spec") or {})
    containers = []
    job_seen = False
    for container in spec.get("containers") or []:
        if container.get("name") in ("$job", "$$job"):
            job_seen = True
            container = {**container, "name": "job", "image": "<the workflow's job image>"}
        containers.append(container)
    if not job_seen:
        containers.insert(0, {"name": "job", "image": "<the workflow's job image>"})
    spec["containers"] = containers
    # What the hook adds itself (packages/k8s/src/k8s/index.ts, createJobPod): fsGroup 1001, an
    # fs-init container from the runner image as 1001, three emptyDir volumes; the template
    # (the "extension") is merged over that.
    spec["securityContext"] = {"fsGroup": 1001, **(spec.get("securityContext") or {})}
    fs_init = {"name": "fs-init", "image": "ghcr.io/actions/actions-runner",
               "command": ["sh", "-c", "mkdir -p /mnt/externals /mnt/work /mnt/github"],
               "securityContext": {"runAsGroup": 1001, "runAsUser": 1001}}
    spec["initContainers"] = [fs_init] + list(spec.get("initContainers") or [])
    spec["volumes"] = [{"name": n, "emptyDir": {}} for n in ("externals", "github", "work")] + list(spec.get("volumes") or [])
    return PodUnderTest(where, namespace, template.get("metadata") or {}, spec)


def pods(objects: list[tuple[str, dict]]) -> tuple[list[PodUnderTest], list[str]]:
    """(pods, problems) of (origin, object) pairs: an environment's tree and chart renders."""
    found, problems = [], []
    configmaps = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for _, o in objects if o.get("kind") == "ConfigMap"}
    controllers = [o for _, o in objects if o.get("kind") == "Deployment"
                   and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "gha-rs-controller"]
    for origin, obj in objects:
        template = pod_security.pod_template(obj)
        meta = obj.get("metadata") or {}
        if template is not None:
            found.append(PodUnderTest(f"{origin}: {obj['kind']}/{meta.get('namespace')}/{meta.get('name')}",
                                      meta.get("namespace") or "default", *template))
        if obj.get("kind") == "AutoscalingRunnerSet" and obj["apiVersion"].startswith(ARC_GROUP + "/"):
            namespace = meta["namespace"]
            if len(controllers) != 1:
                problems.append(f"AutoscalingRunnerSet {namespace}/{meta['name']}: expected one ARC controller, found {len(controllers)}")
                continue
            found.append(_listener_pod(obj, controllers[0]["metadata"]["namespace"]))
            runner = obj["spec"].get("template") or {}
            found.append(PodUnderTest(f"ARC runner of AutoscalingRunnerSet {namespace}/{meta['name']}", namespace,
                                      runner.get("metadata") or {}, runner.get("spec") or {}))
            try:
                hook = _hook_template(runner.get("spec") or {}, configmaps, namespace)
            except LookupError as error:
                problems.append(f"AutoscalingRunnerSet {namespace}/{meta['name']}: {error}")
                continue
            kubernetes_mode = any(
                e.get("name") == "ACTIONS_RUNNER_CONTAINER_HOOKS"
                for c in (runner.get("spec") or {}).get("containers") or [] for e in c.get("env") or []
            )
            if kubernetes_mode:
                found.append(_job_pod(hook or {}, f"job pod of AutoscalingRunnerSet {namespace}/{meta['name']}", namespace))
    return found, problems
