/**
 * What a benchmark leaves in the kernel while it runs (a network namespace, a lab), undone
 * when the run is interrupted. A `finally` does not run when a signal's default action ends
 * the process: an interrupted nftables bench left its namespace `kpsim-bench-<pid>-i5000`
 * behind. While anything is registered here, SIGINT and SIGTERM run every undo (newest first)
 * and then exit with the conventional code, 130 or 143 (128 + the signal's number).
 *
 * Node runs a signal's handler from its event loop: a benchmark that holds something here has
 * to wait for its child processes asynchronously (spawn, not spawnSync) for the handler to run
 * while they do.
 */
import { spawnSync } from 'node:child_process';

export type Undo = () => void | Promise<void>;

const undos = new Set<Undo>();
let interrupted = false;

/** Exit codes of a process ended by these signals, as a shell reports them. */
const EXIT_CODE: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Run `undo` if the process is interrupted before the returned function is called (the undo
 * itself is the caller's to run on the way out).
 */
export function undoOnInterrupt(undo: Undo): () => void {
  if (undos.size === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  undos.add(undo);
  return () => {
    // Once interrupted, the handler owns the undos and the exit: a second signal must not
    // find the default action back while they run.
    if (interrupted || !undos.delete(undo) || undos.size > 0) return;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function onSignal(signal: NodeJS.Signals): Promise<void> {
  if (interrupted) return;
  interrupted = true;
  for (const undo of [...undos].reverse()) {
    try {
      await undo();
    } catch (e) {
      process.stderr.write(`interrupted: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  process.exit(EXIT_CODE[signal as keyof typeof EXIT_CODE] ?? 1);
}

/**
 * `ip netns add name`, the namespace deleted (by name) after `fn`, and on SIGINT or SIGTERM
 * while `fn` runs. `fn` gets the name.
 */
export async function withBenchNetns<T>(name: string, fn: (name: string) => Promise<T>): Promise<T> {
  const remove = (): void => {
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  };
  const release = undoOnInterrupt(remove);
  try {
    const added = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (added.status !== 0) throw new Error(`ip netns add ${name}: ${added.stderr}`);
    return await fn(name);
  } finally {
    release();
    remove();
  }
}
