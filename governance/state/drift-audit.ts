import type { DriftEventInput } from '../audit/types.js';
import { allChanges } from './diff.js';
import type { DriftEvent } from './service.js';

/**
 * A drift event (found on a refresh) as audit records (pure): one per object added, removed or changed
 * around pgairlock, with the object's hash before and after and the changed definition lines. The proxy
 * passes each to AuditLog.recordDrift.
 */
export function driftAuditInputs(event: DriftEvent, maxLines = 20): DriftEventInput[] {
  return allChanges(event.diff).map((c) => {
    const lines = c.lines ? [...c.lines.removed.map((l) => `- ${l}`), ...c.lines.added.map((l) => `+ ${l}`)] : [];
    const shown = lines.slice(0, maxLines);
    if (lines.length > maxLines) shown.push(`... ${lines.length - maxLines} more lines`);
    const head = `${c.kind} ${c.name} ${c.change} outside pgairlock (found by the ${event.reason} refresh at ${event.detectedAt}; schema ${event.previous.schemaHash.slice(0, 12)} -> ${event.current.schemaHash.slice(0, 12)})`;
    return {
      database: event.database,
      object: c.name,
      expectedVersion: c.before ?? null,
      actualVersion: c.after ?? null,
      detail: [head, ...shown].join('\n'),
    };
  });
}
