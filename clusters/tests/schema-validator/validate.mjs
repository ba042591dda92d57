// Validates custom resources against the schemas compiled into the @kubernetes-models packages.
// Input (stdin): JSON array of {"id": string, "object": {...}}.
// Output (stdout): JSON array of {"id", "status": "ok" | "invalid" | "unknown-kind", "errors": [...]}.
// An apiVersion/kind without a model is reported as unknown-kind: the caller fails on it.

const PACKAGES = [
  [/\.toolkit\.fluxcd\.io$/, "@kubernetes-models/flux-cd"],
  [/^monitoring\.coreos\.com$/, "@kubernetes-models/prometheus-operator"],
  [/(^|\.)cert-manager\.io$/, "@kubernetes-models/cert-manager"],
  [/(^|\.)external-secrets\.io$/, "@kubernetes-models/external-secrets"],
];

async function loadModel(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const entry = PACKAGES.find(([pattern]) => pattern.test(group));
  if (!entry || !/^[A-Za-z0-9]+$/.test(kind) || !/^[a-z0-9]+$/.test(version)) return null;
  try {
    const module = await import(`${entry[1]}/${group}/${version}/${kind}`);
    return module[kind] ?? null;
  } catch (error) {
    if (error && (error.code === "ERR_MODULE_NOT_FOUND" || error.code === "ERR_PACKAGE_PATH_NOT_EXPORTED")) {
      return null;
    }
    throw error;
  }
}

function describe(error) {
  if (Array.isArray(error?.errors)) {
    return error.errors.map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword} ${JSON.stringify(e.params ?? {})}`);
  }
  return [String(error?.message ?? error)];
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const items = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = [];
for (const { id, object } of items) {
  const Model = await loadModel(object.apiVersion ?? "", object.kind ?? "");
  if (!Model) {
    results.push({ id, status: "unknown-kind", errors: [`no schema for ${object.apiVersion} ${object.kind}`] });
    continue;
  }
  try {
    new Model(object).validate();
    results.push({ id, status: "ok", errors: [] });
  } catch (error) {
    results.push({ id, status: "invalid", errors: describe(error) });
  }
}
process.stdout.write(JSON.stringify(results));
