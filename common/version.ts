// The one version string: package.json's. The CLI, the OIP server metadata and the operator's default
// image tags read it here; the chart's appVersion is checked against it by a test.
import { readFileSync } from 'node:fs';

export const SERVER_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
