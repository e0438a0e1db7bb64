import pino, { type Logger } from 'pino';

/** JSON logs by default (one object per line, for shippers); pino-pretty only when asked. */
export function createLogger(opts: { level: string; pretty: boolean }, destination?: NodeJS.WritableStream): Logger {
  if (opts.pretty) {
    return pino({ level: opts.level, transport: { target: 'pino-pretty', options: { destination: 2 } } });
  }
  return pino({ level: opts.level, base: { pid: process.pid } }, (destination ?? pino.destination(2)) as pino.DestinationStream);
}
