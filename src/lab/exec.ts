/**
 * Running the kernel's own tools: ip, iptables-restore, nft, conntrack, xtables-monitor. Every
 * command the lab runs goes through here, so that a failure is one KpsimError naming the command
 * and what the tool said, and nothing runs without a time limit.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { KpsimError } from '../errors.js';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the command, ms. */
  readonly ms: number;
}

export interface RunOptions {
  /** Written to the command's stdin. */
  readonly input?: string;
  /** Default 60 s. */
  readonly timeoutMs?: number;
  /** A failure exit is returned rather than thrown. */
  readonly allowFailure?: boolean;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs a command to completion; a non-zero exit is KPSIM_ERR_LAB_COMMAND with its stderr. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult & { status: number | null }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(commandError(argv, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (is it installed?)' : e.message));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const result = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: performance.now() - started, status };
      if (status === 0 || opts.allowFailure) resolve(result);
      else reject(commandError(argv, signal === 'SIGKILL' ? `timed out after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` : firstLines(result.stderr || result.stdout) || `exit ${status}`));
    });
    child.stdin.on('error', () => undefined); // the command may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** The same, blocking: for the few places that must finish before the process exits. */
export function runSync(argv: readonly string[], opts: RunOptions = {}): RunResult & { status: number | null } {
  const started = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { input: opts.input ?? '', encoding: 'utf8', timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  const result = { stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: performance.now() - started, status: r.status };
  if (r.status !== 0 && !opts.allowFailure) throw commandError(argv, firstLines(result.stderr || result.stdout) || (r.error?.message ?? `exit ${r.status}`));
  return result;
}

/** `ip netns exec NS argv...` */
export function inNamespace(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** Whether a command is on the PATH. */
export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * A command left running (a trace monitor) whose output is collected until it is stopped, and
 * handed line by line to `onLine` as it comes: a listener that keeps up means the command never
 * blocks on a full pipe (a blocked `nft monitor` stops reading the kernel's events, which are
 * then lost).
 */
export interface Monitor {
  readonly child: ChildProcess;
  /** Bytes it printed on stdout so far. */
  bytes(): number;
  /** What it printed on stderr. */
  errors(): string;
  /** Stops it (SIGTERM, then SIGKILL) and returns everything it printed on stdout. */
  stop(): Promise<string>;
}

export function startMonitor(argv: readonly string[], onLine?: (line: string) => void): Monitor {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let bytes = 0;
  let partial = '';
  child.stdout!.on('data', (b: Buffer) => {
    out.push(b);
    bytes += b.length;
    if (onLine === undefined) return;
    const lines = (partial + b.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  // Kept apart: nft writes warnings ("XT target MASQUERADE not found") to stderr in the middle of
  // the lines it prints to stdout.
  const err: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    bytes: () => bytes,
    errors: () => Buffer.concat(err).toString('utf8'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      return Buffer.concat(out).toString('utf8');
    },
  };
}

export function commandError(argv: readonly string[], detail: string): KpsimError {
  return new KpsimError('KPSIM_ERR_LAB_COMMAND', `${shortCommand(argv)}: ${detail}`);
}

/** "ip netns exec X iptables-restore" → "iptables-restore (in X)": the tool is what failed. */
function shortCommand(argv: readonly string[]): string {
  if (argv[0] === 'ip' && argv[1] === 'netns' && argv[2] === 'exec' && argv.length > 4) return `${argv.slice(4, 6).join(' ')} (in ${argv[3]})`;
  return argv.slice(0, 3).join(' ');
}

function firstLines(text: string): string {
  return text.trim().split('\n').slice(0, 4).join('; ');
}

/** Runs `fn` over the items, at most `limit` at a time. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
