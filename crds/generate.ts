// `npm run gen`: writes what is generated from TypeBox schemas: the CRD YAML (twice), the ModelServing
// field reference and the JSON Schema of the Kafka records.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelServingCrdYaml } from './crd.ts';
import { recordJsonSchema } from '../runtime/inference-log/record.ts';
import { referenceMarkdown } from './reference.ts';

// The same file in the Helm chart's crds/ directory (Helm installs CRDs from there).
for (const file of [
  join(import.meta.dirname, 'modelship.dev_modelservings.yaml'),
  join(import.meta.dirname, '..', 'charts', 'modelship', 'crds', 'modelship.dev_modelservings.yaml'),
]) {
  writeFileSync(file, modelServingCrdYaml());
  console.log(`wrote ${file}`);
}
const reference = join(import.meta.dirname, '..', 'docs', 'modelserving.md');
writeFileSync(reference, referenceMarkdown());
console.log(`wrote ${reference}`);
const records = join(import.meta.dirname, '..', 'docs', 'inference-record.schema.json');
writeFileSync(records, recordJsonSchema());
console.log(`wrote ${records}`);
