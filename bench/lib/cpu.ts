import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/**
 * CPU time of a process (and its live descendants) from /proc/<pid>/stat: utime + stime, which cover
 * every thread of the process. Resolution is one clock tick (usually 10 ms), ample for runs of seconds.
 */

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime, in clock ticks. */
  readonly userTicks: number;
  /** stime, in clock ticks. */
  readonly systemTicks: number;
}

export interface CpuSample {
  /** The processes counted (the root first). */
  readonly pids: readonly number[];
  readonly userSeconds: number;
  readonly systemSeconds: number;
}

let clockTicks: number | undefined;

/** sysconf(_SC_CLK_TCK): 100 on every mainstream Linux, asked once to be sure. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself
 * contain spaces and parentheses, so fields are counted from the last ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  const pid = Number(text.slice(0, open).trim());
  // After ')': field 3 (state) is rest[0], so field N is rest[N - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const num = (fieldNo: number): number => {
    const v = Number(rest[fieldNo - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc/${pid}/stat: field ${fieldNo} is not a number`);
    return v;
  };
  return { pid, ppid: num(4), userTicks: num(14), systemTicks: num(15) };
}

/** /proc/<pid>/stat of one process, or undefined when it no longer exists. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
}

/** Every live process whose parent chain reaches `root` (not including root). */
function descendants(root: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === root) continue;
    const st = readProcStat(pid);
    if (st) all.push(st);
  }
  const children = new Map<number, ProcStat[]>();
  for (const st of all) {
    const list = children.get(st.ppid);
    if (list) list.push(st);
    else children.set(st.ppid, [st]);
  }
  const out: ProcStat[] = [];
  const queue = [root];
  // Bounded: every pid is visited at most once (the process table is finite and a tree).
  const seen = new Set<number>([root]);
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const child of children.get(parent) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/**
 * CPU used so far by `pid` (all threads) plus, with `includeDescendants`, its live child processes.
 * Throws when `pid` itself is gone: a measurement of a dead process would be silently wrong.
 */
export function readCpu(pid: number, opts: { includeDescendants?: boolean } = {}): CpuSample {
  const root = readProcStat(pid);
  if (!root) throw new Error(`process ${pid} is not running (no /proc/${pid}/stat)`);
  const procs = opts.includeDescendants ? [root, ...descendants(pid)] : [root];
  const hz = clockTicksPerSecond();
  let user = 0;
  let system = 0;
  for (const p of procs) {
    user += p.userTicks;
    system += p.systemTicks;
  }
  return { pids: procs.map((p) => p.pid), userSeconds: user / hz, systemSeconds: system / hz };
}

/** user + system seconds between two samples of the same process. */
export function cpuSecondsBetween(before: CpuSample, after: CpuSample): number {
  return after.userSeconds + after.systemSeconds - (before.userSeconds + before.systemSeconds);
}

/**
 * Busy CPU seconds of the whole machine so far (all cores): user, nice, system, irq and softirq from the first
 * line of /proc/stat; idle, iowait and steal (time the hypervisor gave to others) are not ours, and guest time is
 * already inside user and nice. It counts every process plus kernel threads (jbd2, kworkers, ksoftirqd) and
 * interrupts, which per-process times miss. In a container /proc/stat is usually the host's: the whole host.
 */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (line.split(/\s+/)[0] !== 'cpu' || f.length < 7 || f.some((x) => !Number.isFinite(x))) throw new Error(`/proc/stat: unexpected first line: ${line}`);
  const [user, nice, system, , , irq, softirq] = f as [number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq) / clockTicksPerSecond();
}
