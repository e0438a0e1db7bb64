import { readFileSync } from 'node:fs';
import { SNAPSHOT_FORMAT, type CatalogSnapshot } from './types.js';
import { schemaHashOf } from './hash.js';

/** A saved snapshot (pgairlock snapshot save), checked for its format and for a schema hash that matches its objects. */
export function parseSnapshotJson(text: string, source = 'snapshot'): CatalogSnapshot {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const s = data as Partial<CatalogSnapshot> | null;
  if (!s || typeof s !== 'object' || s.format !== SNAPSHOT_FORMAT || !Array.isArray(s.objects) || !Array.isArray(s.dependencies) || typeof s.schemaHash !== 'string') {
    throw new Error(`${source} is not a pgairlock snapshot (expected "format": "${SNAPSHOT_FORMAT}"); create one with \`pgairlock snapshot save -o FILE\``);
  }
  const recomputed = schemaHashOf(s.objects);
  if (recomputed !== s.schemaHash) throw new Error(`${source}: its schemaHash does not match its objects (the file was edited or truncated)`);
  return s as CatalogSnapshot;
}

export function loadSnapshotFile(path: string): CatalogSnapshot {
  return parseSnapshotJson(readFileSync(path, 'utf8'), path);
}
