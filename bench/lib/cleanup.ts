import type { ChildProcess } from 'node:child_process';

/**
 * Everything the runner must undo, in reverse order of creation: processes it started and the scratch
 * database. Runs once, on normal exit, on error and on Ctrl-C (SIGINT/SIGTERM/SIGHUP).
 */

type Undo = { readonly name: string; readonly run: () => Promise<void>; readonly timeoutMs: number | undefined };

export class Cleanup {
  private readonly undos: Undo[] = [];
  private running: Promise<void> | undefined;

  /** Registers an undo step; later registrations run first. `timeoutMs` overrides runAll's bound for this step. */
  add(name: string, run: () => Promise<void>, timeoutMs?: number): void {
    this.undos.push({ name, run, timeoutMs });
  }

  /** Runs every step (each bounded by `stepTimeoutMs`), reporting failures instead of stopping at them. */
  runAll(log: (line: string) => void, stepTimeoutMs = 15_000): Promise<void> {
    this.running ??= (async () => {
      while (this.undos.length > 0) {
        const undo = this.undos.pop()!;
        let timer: NodeJS.Timeout | undefined;
        const limit = undo.timeoutMs ?? stepTimeoutMs;
        try {
          await Promise.race([
            undo.run(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms`)), limit);
            }),
          ]);
        } catch (err) {
          log(`cleanup: ${undo.name} failed: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }
}

/** True while the child has neither exited nor been killed by a signal. */
export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (!isRunning(child)) {
      resolve();
      return;
    }
    const killTimer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(killTimer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Collects a child's output lines, keeping only the last `max` (servers must never block on a full pipe). */
export class LogTail {
  private readonly lines: string[] = [];
  private partial = '';
  private readonly watchers: { needle: string; resolve: () => void }[] = [];

  constructor(private readonly max = 200) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.addLine(line);
  }

  private addLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
    const lower = line.toLowerCase();
    for (let i = this.watchers.length - 1; i >= 0; i--) {
      const w = this.watchers[i]!;
      if (lower.includes(w.needle)) {
        this.watchers.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Resolves when a line containing `needle` (case-insensitive) arrives, or at once if one already did. */
  waitFor(needle: string): Promise<void> {
    const n = needle.toLowerCase();
    if (this.lines.some((l) => l.toLowerCase().includes(n))) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ needle: n, resolve }));
  }

  tail(count = 20): string {
    return [...this.lines, ...(this.partial ? [this.partial] : [])].slice(-count).join('\n');
  }
}

/**
 * Ctrl-C for a bench runner: SIGINT, SIGTERM or SIGHUP kills the child process in progress (`current`), the
 * steps notice through check(), and the runner's `finally` cleans up (Cleanup) before it exits.
 */
export class Interrupt {
  aborted = false;
  /** Kills the child process now running; set while one runs. */
  current: (() => void) | undefined;

  constructor(log: (line: string) => void, name: string) {
    const onSignal = (sig: NodeJS.Signals) => {
      if (this.aborted) return;
      this.aborted = true;
      log(`\n${name}: ${sig}: stopping the current run and cleaning up...`);
      this.current?.();
    };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  }

  /** Throws once a signal came: the step in progress stops there. */
  check(): void {
    if (this.aborted) throw new Error('interrupted');
  }
}
