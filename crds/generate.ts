// `npm run gen`: writes what is generated from TypeBox schemas: the CRDs' YAML (each twice), their field
// references and the JSON Schema of the Kafka records.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BATCH_CRD_FILE, batchPredictionCrdYaml } from './batchprediction.crd.ts';
import { modelServingCrdYaml } from './crd.ts';
import { recordJsonSchema } from '../runtime/inference-log/record.ts';
import { batchReferenceMarkdown, referenceMarkdown } from './reference.ts';

const write = (file: string, text: string) => {
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
};
// Each CRD also in the Helm chart's crds/ directory (Helm installs CRDs from there).
for (const [name, yaml] of [
  ['modelship.dev_modelservings.yaml', modelServingCrdYaml()],
  [BATCH_CRD_FILE, batchPredictionCrdYaml()],
] as const) {
  write(join(import.meta.dirname, name), yaml);
  write(join(import.meta.dirname, '..', 'charts', 'modelship', 'crds', name), yaml);
}
write(join(import.meta.dirname, '..', 'docs', 'modelserving.md'), referenceMarkdown());
write(join(import.meta.dirname, '..', 'docs', 'batchprediction.md'), batchReferenceMarkdown());
const records = join(import.meta.dirname, '..', 'docs', 'inference-record.schema.json');
writeFileSync(records, recordJsonSchema());
console.log(`wrote ${records}`);
