"""Schema checks of rendered objects, offline.

- Kubernetes kinds: kubernetes-validate (the API's OpenAPI schemas for the clusters' minor),
  strict, so unknown fields fail.
- Custom resources: the openAPIV3Schema of the CRD that installs them (crd_schema.py): Flux's
  kinds against the CRDs of the Flux release the bootstrap installs, every other kind against
  the CRD its chart ships (rendered by releases.py). Unknown fields fail wherever the schema
  does not preserve them.
- A kind that neither knows is an error, never a skip. The only exception is EXTERNAL_KINDS:
  kinds whose CRD is installed outside the Flux tree and is not available offline.
"""

from __future__ import annotations

import kubernetes_validate

import crd_schema

KUBERNETES_SCHEMA_VERSION = "1.34"

# group/kind -> who installs its CRD. The Flux Operator's CRDs come with the operator that
# OpenTofu installs (opentofu/stacks/platform); no copy of them is available offline, so a
# FluxInstance is checked by test_bootstrap_manifests_are_what_flux_bootstrap_writes only.
EXTERNAL_KINDS = {("fluxcd.controlplane.io", "FluxInstance"): "the Flux Operator, installed by OpenTofu"}


def validate_objects(registry: crd_schema.Registry, items: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Maps an item key to its schema problems; keys without problems are absent."""
    problems: dict[str, list[str]] = {}
    for key, obj in items:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)
            continue
        except kubernetes_validate.SchemaNotFoundError:
            pass
        except kubernetes_validate.ValidationError as error:
            problems[key] = [str(error).splitlines()[0]]
            continue
        except kubernetes_validate.InvalidSchemaError as error:
            problems[key] = [f"invalid schema: {error}"]
            continue
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        if (group, obj.get("kind")) in EXTERNAL_KINDS:
            continue
        found = registry.validate(obj)
        if found:
            problems[key] = found
    return problems
