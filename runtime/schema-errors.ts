// Turns JSON-schema validation errors into one readable line: "/inputs/0/datatype must be one of …; …".
interface SchemaError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message: string;
}

/** Pure. Drops the noise (schema-is-false twins, the branches of a failed anyOf) and keeps the first 5. */
export function describeSchemaErrors(errors: readonly SchemaError[], max = 5): string {
  const failedAnyOf = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath));
  const lines: string[] = [];
  for (const e of errors) {
    if (e.keyword === 'boolean') continue;
    if ([...failedAnyOf].some((p) => e.schemaPath.startsWith(`${p}/anyOf/`))) continue;
    const where = e.instancePath || '(root)';
    let what = e.message;
    if (e.keyword === 'additionalProperties') {
      const extra = e.params.additionalProperties;
      what = `has unknown field${Array.isArray(extra) && extra.length > 1 ? 's' : ''} ${Array.isArray(extra) ? extra.join(', ') : String(extra)}`;
    } else if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues)) {
      what = `must be one of ${e.params.allowedValues.join(', ')}`;
    } else if (e.keyword === 'required' && Array.isArray(e.params.requiredProperties)) {
      what = `is missing required field ${e.params.requiredProperties.join(', ')}`;
    }
    const line = `${where} ${what}`;
    if (!lines.includes(line)) lines.push(line);
  }
  const shown = lines.slice(0, max);
  if (lines.length > max) shown.push(`(${lines.length - max} more)`);
  return shown.join('; ') || 'does not match the schema';
}
