import type { PgErrorFields } from '../errors.js';
import { Backend } from './protocol.js';

/**
 * Serialisers for the backend messages pgairlock originates itself (errors, notices, the admin
 * console's result sets, its own BackendKeyData). Relayed server messages are never re-encoded.
 */

const enc = new TextEncoder();

/** Builds one message: type byte, int32 length, then the body parts. */
function message(type: number, parts: readonly Uint8Array[]): Buffer {
  let len = 4;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(1 + len);
  out[0] = type;
  out.writeInt32BE(len, 1);
  let off = 5;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const cstr = (s: string): Uint8Array => {
  const b = enc.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b, 0);
  return out;
};

function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n, 0);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

function fieldsMessage(type: number, f: PgErrorFields, defaultSeverity: string): Buffer {
  const sev = f.severity ?? defaultSeverity;
  const parts: Uint8Array[] = [
    Uint8Array.of(0x53), cstr(sev), // S: severity (localised; we send English)
    Uint8Array.of(0x56), cstr(sev), // V: severity (never localised)
    Uint8Array.of(0x43), cstr(f.code), // C
    Uint8Array.of(0x4d), cstr(f.message), // M
  ];
  if (f.detail) parts.push(Uint8Array.of(0x44), cstr(f.detail));
  if (f.hint) parts.push(Uint8Array.of(0x48), cstr(f.hint));
  if (f.position !== undefined) parts.push(Uint8Array.of(0x50), cstr(String(f.position)));
  parts.push(Uint8Array.of(0x00));
  return message(type, parts);
}

export const errorResponse = (f: PgErrorFields): Buffer => fieldsMessage(Backend.ErrorResponse, f, 'ERROR');
export const noticeResponse = (f: PgErrorFields): Buffer => fieldsMessage(Backend.NoticeResponse, f, 'NOTICE');

export const readyForQuery = (status: number): Buffer => message(Backend.ReadyForQuery, [Uint8Array.of(status)]);

export const backendKeyData = (pid: number, secret: Buffer): Buffer => message(Backend.BackendKeyData, [int32(pid), secret]);

export const parameterStatus = (name: string, value: string): Buffer =>
  message(Backend.ParameterStatus, [cstr(name), cstr(value)]);

export const authenticationOk = (): Buffer => message(Backend.Authentication, [int32(0)]);

export const commandComplete = (tag: string): Buffer => message(Backend.CommandComplete, [cstr(tag)]);

export const emptyQueryResponse = (): Buffer => message(Backend.EmptyQueryResponse, []);

/** RowDescription for text columns (type oid 25, text format). */
export function rowDescription(columns: readonly string[]): Buffer {
  const parts: Uint8Array[] = [int16(columns.length)];
  for (const c of columns) {
    parts.push(cstr(c), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0));
  }
  return message(Backend.RowDescription, parts);
}

export function dataRow(values: readonly (string | null)[]): Buffer {
  const parts: Uint8Array[] = [int16(values.length)];
  for (const v of values) {
    if (v === null) {
      parts.push(int32(-1));
    } else {
      const b = enc.encode(v);
      parts.push(int32(b.length), b);
    }
  }
  return message(Backend.DataRow, parts);
}

/** Frontend messages pgairlock sends upstream on its own account. */
export const frontendQuery = (sql: string): Buffer => message(0x51, [cstr(sql)]);
export const frontendParse = (name: string, sql: string): Buffer => message(0x50, [cstr(name), cstr(sql), int16(0)]);
export const frontendTerminate = (): Buffer => message(0x58, []);

/** StartupMessage (untyped): int32 length, int32 protocol, name/value pairs, terminating NUL. */
export function startupMessage(protocol: number, params: ReadonlyMap<string, string>): Buffer {
  const parts: Uint8Array[] = [int32(protocol)];
  for (const [k, v] of params) parts.push(cstr(k), cstr(v));
  parts.push(Uint8Array.of(0));
  let len = 4;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(len);
  out.writeInt32BE(len, 0);
  let off = 4;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function sslRequest(): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(80877103, 4);
  return b;
}

export function cancelRequest(pid: number, secret: Buffer): Buffer {
  const b = Buffer.allocUnsafe(12 + secret.length);
  b.writeInt32BE(12 + secret.length, 0);
  b.writeInt32BE(80877102, 4);
  b.writeInt32BE(pid, 8);
  secret.copy(b, 12);
  return b;
}
