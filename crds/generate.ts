// `npm run gen:crd`: writes the CRD YAML from the TypeBox schema.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelServingCrdYaml } from './crd.ts';

const file = join(import.meta.dirname, 'modelship.dev_modelservings.yaml');
writeFileSync(file, modelServingCrdYaml());
console.log(`wrote ${file}`);
