// Whether an observed object already holds every field we would apply. Pure. It lets a reconcile skip
// writes when nothing changed (zero writes on an idle resync) while still reverting hand edits of our
// fields. Fields the API server adds (defaults, status, metadata) are ignored.
export function containsFields(observed: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object') {
    if (observed === desired) return true;
    // Quantities and int-or-strings may come back as the other of number and string.
    return (typeof desired === 'number' || typeof desired === 'string') && String(observed) === String(desired);
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(observed) || observed.length !== desired.length) return false;
    return desired.every((d, i) => containsFields(observed[i], d));
  }
  if (observed === null || typeof observed !== 'object' || Array.isArray(observed)) return false;
  const fields = observed as Record<string, unknown>;
  for (const [k, v] of Object.entries(desired as Record<string, unknown>)) {
    if (!containsFields(fields[k], v)) return false;
  }
  return true;
}
