// Validates every object of a multi-document YAML stream (e.g. the output of
// `kubectl kustomize deploy/k8s`) against the Kubernetes API schemas of the
// npm package kubernetes-models, and prometheus-operator objects against
// @kubernetes-models/prometheus-operator. Prints one line per object; exits 1
// naming each object that fails, or that no schema knows.
//
//   kubectl kustomize deploy/k8s | node deploy/validate/validate.mjs
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const text = readFileSync(process.argv[2] ?? 0, "utf8");
const docs = parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o);
let failed = 0;
for (const obj of docs) {
  const name = `${obj.kind}/${obj.metadata?.name}`;
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  let module;
  try {
    if (group === "monitoring.coreos.com") {
      module = await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${obj.kind}`);
    } else {
      module = await import(`kubernetes-models/${group ? group + "/" : ""}${version}/${obj.kind}`);
    }
  } catch (e) {
    console.log(`FAIL ${name}: no schema for ${obj.apiVersion} ${obj.kind}`);
    ++failed;
    continue;
  }
  try {
    new module[obj.kind](obj).validate();
    console.log(`ok   ${name} (${obj.apiVersion})`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    ++failed;
  }
}
console.log(`${docs.length} objects, ${failed} failed`);
process.exit(failed > 0 || docs.length === 0 ? 1 : 0);
