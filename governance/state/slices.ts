/**
 * Drivers for work written as a generator that yields at points where it may pause (the snapshot
 * build, its index): all at once, or in slices that give the event loop back to the proxy's
 * sessions between them.
 */

/** Runs the steps to the end in one go. */
export function runAll<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs the steps in slices of about `sliceMs`, yielding to the event loop (setImmediate) between them. */
export async function runInSlices<T>(steps: Generator<void, T>, sliceMs: number): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}
