/**
 * The lab's record on disk: what one `kpsim lab up` made (namespaces, the pods process, the
 * socket it answers on), so that `kpsim lab status` and `kpsim lab down` work from another
 * process, and after a crash. The file is written before the first namespace is made and
 * rewritten as the lab grows; `lab down` also removes namespaces found by their name prefix, so
 * a run that died before writing leaves nothing it cannot find.
 *
 *   $KPSIM_LAB_STATE_DIR, else /run/kpsim/lab (root), else <tmpdir>/kpsim-lab
 *     <id>.json        this file
 *     <id>.pods.sock   the pods process's control socket (counters)
 *     <id>.pods.log    its output
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KpsimError } from '../errors.js';
import type { LabPlan } from './plan.js';

export const LAB_STATE_SCHEMA = 'kpsim.lab/v1';

/** The word every lab namespace name starts with, unless KPSIM_LAB_NAME_PREFIX says otherwise (tests). */
export const DEFAULT_NAME_PREFIX = 'kpsim-lab';

export interface LabProcess {
  readonly pid: number;
  readonly role: 'pods';
  /** A word of its command line that names this lab: checked before it is signalled. */
  readonly marker: string;
}

export interface LabState {
  readonly schema: typeof LAB_STATE_SCHEMA;
  readonly id: string;
  /** Namespace names start with `${prefix}-`. */
  readonly prefix: string;
  readonly mode: string;
  readonly node: string;
  readonly files: readonly string[];
  readonly createdAt: string;
  status: 'creating' | 'up' | 'failed';
  readonly namespaces: readonly string[];
  processes: LabProcess[];
  /** The pods process's control socket (HTTP over a Unix socket), once it runs. */
  podsSocket?: string;
  readonly plan: LabPlan;
  /** What was loaded, per family: the tool and the size of the ruleset. */
  loaded: { family: 4 | 6; tool: string; bytes: number; ms: number }[];
  /** What may not work as it should in this lab. */
  readonly warnings: readonly string[];
}

/** Where lab records live. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['KPSIM_LAB_STATE_DIR']) return env['KPSIM_LAB_STATE_DIR'];
  try {
    accessSync('/run', constants.W_OK);
    return '/run/kpsim/lab';
  } catch {
    return join(tmpdir(), 'kpsim-lab');
  }
}

export function namePrefix(env: NodeJS.ProcessEnv = process.env): string {
  return env['KPSIM_LAB_NAME_PREFIX'] || DEFAULT_NAME_PREFIX;
}

const ID = /^[a-z0-9][a-z0-9-]{0,23}$/;

export function checkLabId(id: string): string {
  if (!ID.test(id)) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `--id: ${JSON.stringify(id)} is not a lab id (lowercase letters, digits and dashes, at most 24)`);
  return id;
}

export function statePath(dir: string, id: string): string {
  return join(dir, `${id}.json`);
}

export function writeState(dir: string, state: LabState): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = statePath(dir, state.id);
  // Written aside and renamed: a reader never sees half a file, even if this process dies.
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function readState(dir: string, id: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(dir, id), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const state = JSON.parse(text) as LabState;
    return state.schema === LAB_STATE_SCHEMA ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Every lab recorded in the directory, oldest first. */
export function listStates(dir: string): LabState[] {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.json'))
    .map((f) => readState(dir, f.slice(0, -'.json'.length)))
    .filter((s): s is LabState => s !== undefined)
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/** Removes a lab's record and the files beside it. */
export function removeStateFiles(dir: string, id: string): void {
  for (const suffix of ['.json', '.json.tmp', '.pods.sock', '.pods.log', '.pods.spec', '.pods.spec.lines']) rmSync(join(dir, `${id}${suffix}`), { force: true });
}
