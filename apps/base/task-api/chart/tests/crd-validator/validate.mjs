// Validates custom resources rendered by the chart against the CRD schemas shipped in the
// @kubernetes-models packages (generated from the projects' own CRDs).
// Input (stdin): a JSON array of objects. Output (stdout): a JSON array with one entry per
// object, {kind, name, errors: [...]}; an object whose apiVersion/kind has no model is an error,
// never skipped.
import { readFileSync } from "node:fs";
// Only the kinds the chart renders are loaded (loading whole API groups costs seconds).
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ExternalSecret } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret";
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";

const MODELS = new Map(
  [ServiceMonitor, PrometheusRule, ExternalSecret, HTTPRoute].map((m) => [`${m.apiVersion} ${m.kind}`, m]),
);

function modelFor(apiVersion, kind) {
  return MODELS.get(`${apiVersion} ${kind}`);
}

function describe(error) {
  if (Array.isArray(error?.errors)) {
    return error.errors.map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword} ${JSON.stringify(e.params ?? {})}`);
  }
  return [String(error?.message ?? error)];
}

const objects = JSON.parse(readFileSync(0, "utf8"));
const results = objects.map((obj) => {
  const result = { apiVersion: obj?.apiVersion, kind: obj?.kind, name: obj?.metadata?.name, errors: [] };
  const Model = modelFor(obj?.apiVersion, obj?.kind);
  if (!Model) {
    result.errors.push(`no schema known for ${obj?.apiVersion} ${obj?.kind}`);
    return result;
  }
  try {
    new Model(obj).validate();
  } catch (error) {
    result.errors.push(...describe(error));
  }
  return result;
});
process.stdout.write(JSON.stringify(results));
