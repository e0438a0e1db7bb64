import { ProtocolViolation } from '../errors.js';
import { readCString } from './framer.js';
import { StartupCode } from './protocol.js';

/** The untyped packets a client may send before (or instead of) a session. */
export type StartupPacket =
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  | { readonly kind: 'cancel'; readonly pid: number; readonly secret: Buffer }
  | { readonly kind: 'startup'; readonly protocol: number; readonly params: Map<string, string> };

/**
 * Reads the length-prefixed startup packet at the front of `buf`.
 * Returns undefined while it is incomplete, else the packet and its byte length.
 */
export function readStartupPacket(buf: Buffer, maxBytes: number): { packet: StartupPacket; length: number } | undefined {
  if (buf.length < 4) return undefined;
  const len = buf.readInt32BE(0);
  if (len < 8 || len > maxBytes) throw new ProtocolViolation(`invalid startup packet length ${len}`);
  if (buf.length < len) return undefined;
  const code = buf.readInt32BE(4);
  return { packet: decode(buf, code, len), length: len };
}

function decode(buf: Buffer, code: number, len: number): StartupPacket {
  switch (code) {
    case StartupCode.SSLRequest:
      return { kind: 'ssl' };
    case StartupCode.GSSENCRequest:
      return { kind: 'gssenc' };
    case StartupCode.CancelRequest: {
      // 3.0: 4-byte secret; 3.2: up to 256 bytes. Keep the key as bytes.
      if (len < 16 || len > 12 + 256) throw new ProtocolViolation('invalid cancel request length');
      return { kind: 'cancel', pid: buf.readInt32BE(8), secret: Buffer.from(buf.subarray(12, len)) };
    }
    default: {
      const major = code >>> 16;
      if (major !== 3) {
        throw new ProtocolViolation(
          `unsupported frontend protocol ${major}.${code & 0xffff}: server supports 3.0 to 3.2`,
        );
      }
      const params = new Map<string, string>();
      let off = 8;
      while (off < len - 1) {
        const [name, afterName] = readCString(buf, off, len);
        if (name === '') break;
        const [value, afterValue] = readCString(buf, afterName, len);
        params.set(name, value);
        off = afterValue;
      }
      if (buf[len - 1] !== 0) throw new ProtocolViolation('startup packet is not NUL-terminated');
      if (!params.get('user')) throw new ProtocolViolation('no PostgreSQL user name specified in startup packet');
      return { kind: 'startup', protocol: code, params };
    }
  }
}
