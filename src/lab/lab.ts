/**
 * A lab: one node's rules loaded into a real kernel, in network namespaces kpsim makes and names
 * after itself, with a client to send from and the endpoints' pods to answer (see plan.ts for the
 * topology). `labUp` makes one from a compiled cluster and records it (state.ts); `labDown`
 * removes one, from its record or from nothing but its name prefix.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KpsimError } from '../errors.js';
import type { CompiledNode, ModeDriver } from '../node/mode-driver.js';
import { isRulesMode, modeDriver } from '../node/modes.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import { type Family, familyOfValidIP } from '../util/ip.js';
import { forEachLimited, inNamespace, run } from './exec.js';
import { type KernelMode, type LabMode, kernelMode, labUnavailable } from './kernel-modes.js';
import { type LabPlan, planLab, plannedEndpoints } from './plan.js';
import { type PodsStats, readPodsStats, startPods } from './pods.js';
import { type LabProcess, type LabState, LAB_STATE_SCHEMA, checkLabId, listStates, namePrefix, readState, removeStateFiles, stateDir, writeState } from './state.js';
import { topologyCommands } from './topology.js';

export interface LabInput {
  readonly node: ResolvedNode;
  readonly states: readonly ProxierState[];
}

export interface LabUpOptions {
  readonly mode: LabMode;
  /** Default: six random hex digits. */
  readonly id?: string;
  /** Addresses the client namespace sends from; default one per family outside every cluster range. */
  readonly clientSources?: readonly string[];
  /** Start the pods' servers (default true); without them the kernel still DNATs, nobody answers. */
  readonly servers?: boolean;
  /** The manifests, for the record. */
  readonly files?: readonly string[];
  /** Default: stateDir() and namePrefix() (KPSIM_LAB_STATE_DIR, KPSIM_LAB_NAME_PREFIX). */
  readonly stateDir?: string;
  readonly namePrefix?: string;
  readonly onStep?: (line: string) => void;
  /** What compileForLab(input, mode) gave, when the caller already has it. */
  readonly rulesets?: readonly LoadedRuleset[];
  /** Which endpoints get a pod (default all): see PlanOptions.placeEndpoint. */
  readonly placeEndpoint?: (ip: string) => boolean;
}

/** The ruleset one family loads, as the mode's driver compiled and rendered it. */
export interface LoadedRuleset {
  readonly family: Family;
  readonly compiled: CompiledNode;
  readonly text: string;
}

export interface Lab {
  readonly state: LabState;
  readonly plan: LabPlan;
  readonly kernel: KernelMode;
  readonly rulesets: readonly LoadedRuleset[];
  readonly stateDir: string;
  /** The pods' counters (none when the lab runs without servers). */
  podsStats(): Promise<PodsStats>;
  down(): Promise<void>;
}

/** How many `ip -n NS -batch` run at once while a lab is made. */
const NAMESPACE_CONCURRENCY = 8;

/** The driver of a lab mode, once the mode is one kpsim compiles (KPSIM_ERR_LAB_UNAVAILABLE otherwise). */
export function labDriver(mode: LabMode): ModeDriver<CompiledNode> {
  const why = labUnavailable(mode);
  if (why !== undefined) throw new KpsimError('KPSIM_ERR_LAB_UNAVAILABLE', why);
  if (!isRulesMode(mode)) throw new KpsimError('KPSIM_ERR_LAB_UNAVAILABLE', `${mode}: no mode driver`);
  return modeDriver(mode);
}

/** Each family's ruleset for the lab: the driver's own rendering, complete for an empty namespace. */
export function compileForLab(input: LabInput, mode: LabMode): LoadedRuleset[] {
  const driver = labDriver(mode);
  return input.states.map((state) => {
    const compiled = driver.compile(input.node, [state], kernelMode(mode).compileOptions);
    return { family: state.family, compiled, text: driver.render(compiled, 'kube-proxy') };
  });
}

export async function labUp(input: LabInput, opts: LabUpOptions): Promise<Lab> {
  const kernel = kernelMode(opts.mode);
  const rulesets = opts.rulesets ?? compileForLab(input, opts.mode);
  const dir = opts.stateDir ?? stateDir();
  const id = checkLabId(opts.id ?? randomBytes(3).toString('hex'));
  if (readState(dir, id) !== undefined) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `--id: a lab ${id} is already up (kpsim lab down --id ${id})`);
  const prefix = `${opts.namePrefix ?? namePrefix()}-${id}`;
  const plan = planLab(input.node, input.states, {
    prefix,
    ...(opts.clientSources !== undefined ? { clientSources: opts.clientSources } : {}),
    ...(opts.placeEndpoint !== undefined ? { placeEndpoint: opts.placeEndpoint } : {}),
  });
  const commands = topologyCommands(plan, kernel.sysctls(input.states));
  const say = opts.onStep ?? ((): void => undefined);

  const state: LabState = {
    schema: LAB_STATE_SCHEMA, id, prefix, mode: opts.mode, node: input.node.name, files: [...(opts.files ?? [])],
    createdAt: new Date().toISOString(), status: 'creating', namespaces: [...commands.perNamespace.keys()],
    processes: [], plan, loaded: [], warnings: neighbourWarnings(plan),
  };
  for (const w of state.warnings) say(`warning: ${w}`);
  writeState(dir, state);
  const lab = makeLab(state, plan, kernel, rulesets, dir);
  try {
    say(`namespaces: ${state.namespaces.length} (node, client, ${plan.pods.filter((p) => p.placement !== 'host').length} pods)`);
    await run(['ip', '-batch', '-'], { input: `${commands.host.join('\n')}\n` });
    await run(inNamespace(plan.names.node, ['sysctl', '-qw', ...commands.nodeSysctls]));
    await forEachLimited([...commands.perNamespace], NAMESPACE_CONCURRENCY, ([ns, lines]) =>
      run(['ip', '-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` }));
    for (const r of rulesets) {
      const loaded = await kernel.load(plan.names.node, r.family, r.text);
      state.loaded.push({ family: r.family, tool: loaded.tool, bytes: Buffer.byteLength(r.text), ms: loaded.ms });
      say(`IPv${r.family} rules: ${loaded.tool}, ${Buffer.byteLength(r.text)} bytes in ${loaded.ms.toFixed(0)} ms`);
    }
    // Node has no SCTP sockets: an SCTP endpoint is NATed to like any other, and nobody answers.
    const sockets = plannedEndpoints(plan).filter((e) => e.port.protocol !== 'SCTP').map((e) => ({ ...e.port, ns: e.ns, ...(e.podName !== undefined ? { podName: e.podName } : {}) }));
    if ((opts.servers ?? true) && sockets.length > 0) {
      const marker = `kpsim-lab-pods:${prefix}`;
      const controlSocket = join(dir, `${id}.pods.sock`);
      const { pid } = await startPods({ sockets, home: plan.names.node, controlSocket, specFile: join(dir, `${id}.pods.spec`), logFile: join(dir, `${id}.pods.log`), marker });
      state.processes.push({ pid, role: 'pods', marker });
      state.podsSocket = controlSocket;
      say(`pods: ${sockets.length} endpoints served by process ${pid}`);
    }
    state.status = 'up';
    writeState(dir, state);
    return lab;
  } catch (e) {
    state.status = 'failed';
    await lab.down().catch(() => undefined);
    throw e;
  }
}

function makeLab(state: LabState, plan: LabPlan, kernel: KernelMode, rulesets: readonly LoadedRuleset[], dir: string): Lab {
  return {
    state, plan, kernel, rulesets, stateDir: dir,
    podsStats() {
      return state.podsSocket === undefined ? Promise.resolve({ backends: [] }) : readPodsStats(state.podsSocket);
    },
    async down() {
      await labDown(dir, state);
    },
  };
}

export interface DownReport {
  readonly labs: readonly string[];
  readonly namespaces: readonly string[];
  readonly processes: readonly number[];
}

/**
 * Removes a lab: its processes (those recorded, checked against their command line, and any
 * left in its namespaces), its namespaces (recorded, and any found by its name prefix), its record.
 */
export async function labDown(dir: string, state: LabState): Promise<DownReport> {
  const processes = stopRecordedProcesses(state.processes);
  const namespaces = [...new Set([...state.namespaces, ...(await namespacesNamed(`${state.prefix}-`))])];
  processes.push(...(await removeNamespaces(namespaces)));
  removeStateFiles(dir, state.id);
  return { labs: [state.id], namespaces, processes };
}

/** `kpsim lab down` without --id: every recorded lab, then every namespace named like one. */
export async function labDownAll(dir: string, prefix: string): Promise<DownReport> {
  const labs: string[] = [];
  const namespaces: string[] = [];
  const processes: number[] = [];
  for (const state of listStates(dir)) {
    const r = await labDown(dir, state);
    labs.push(...r.labs);
    namespaces.push(...r.namespaces);
    processes.push(...r.processes);
  }
  const left = await labDownNamed(`${prefix}-`);
  return { labs, namespaces: [...namespaces, ...left.namespaces], processes: [...processes, ...left.processes] };
}

/** Every namespace whose name starts with `prefix`, and the processes in them: what a crashed run leaves. */
export async function labDownNamed(prefix: string): Promise<DownReport> {
  const namespaces = await namespacesNamed(prefix);
  return { labs: [], namespaces, processes: await removeNamespaces(namespaces) };
}

/** Namespaces whose name starts with `prefix`. */
export async function namespacesNamed(prefix: string): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list'], { allowFailure: true });
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
}

/** Stops every process still in the namespaces (all of them started by the lab), then deletes them. */
async function removeNamespaces(namespaces: readonly string[]): Promise<number[]> {
  const stopped = signalAndWait(processesIn(namespaces));
  if (namespaces.length > 0) await run(['ip', '-force', '-batch', '-'], { input: `${namespaces.map((n) => `netns del ${n}`).join('\n')}\n`, allowFailure: true });
  return stopped;
}

/**
 * The processes whose network namespace is one of these, in one pass over /proc (what
 * `ip netns pids` does for one namespace; a thousand namespaces are one pass, not a thousand).
 */
function processesIn(namespaces: readonly string[]): number[] {
  const wanted = new Set<string>();
  for (const ns of namespaces) {
    try {
      const st = statSync(`/run/netns/${ns}`);
      wanted.add(`${st.dev}:${st.ino}`);
    } catch {
      // already gone
    }
  }
  if (wanted.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      if (wanted.has(`${st.dev}:${st.ino}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to look at
    }
  }
  return pids;
}

function stopRecordedProcesses(processes: readonly LabProcess[]): number[] {
  // A recorded PID may since belong to another process: only one whose command line names the lab is ours.
  return signalAndWait(processes.filter((p) => commandLineOf(p.pid).includes(p.marker)).map((p) => p.pid));
}

function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** SIGTERM, up to 3 s for them to go, then SIGKILL. */
function signalAndWait(pids: readonly number[]): number[] {
  // A process that has exited but whose parent has not reaped it (the lab's processes outlive the
  // `kpsim` that started them) is gone for our purposes: its state in /proc/PID/stat is Z.
  const alive = (pid: number): boolean => {
    try {
      return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const signalled = pids.filter((pid) => {
    try {
      process.kill(pid, 'SIGTERM');
      return true;
    } catch {
      return false;
    }
  });
  const deadline = Date.now() + 3000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (signalled.some(alive) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 50);
  for (const pid of signalled.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return signalled;
}


export interface LabStatus {
  readonly state: LabState;
  /** Recorded namespaces that exist. */
  readonly namespacesPresent: number;
  readonly processesAlive: number;
}

export async function labStatuses(dir: string): Promise<LabStatus[]> {
  const present = new Set(await namespacesNamed(''));
  return listStates(dir).map((state) => ({
    state,
    namespacesPresent: state.namespaces.filter((n) => present.has(n)).length,
    processesAlive: state.processes.filter((p) => commandLineOf(p.pid).includes(p.marker)).length,
  }));
}

/**
 * The kernel keeps one neighbour table for all namespaces (its gc_thresh3 is the host's): the
 * node and each pod hold an entry per peer, about two per pod, and past the limit new peers
 * are unreachable.
 */
function neighbourWarnings(plan: LabPlan): string[] {
  const warnings: string[] = [];
  for (const family of plan.families) {
    const pods = plan.pods.filter((p) => p.placement !== 'host' && p.ips.some((ip) => familyOfValidIP(ip) === family)).length;
    let limit: number;
    try {
      limit = Number(readFileSync(`/proc/sys/net/ipv${family}/neigh/default/gc_thresh3`, 'utf8'));
    } catch {
      continue;
    }
    if (2 * pods + plan.clientSources.length > limit) {
      warnings.push(`${pods} IPv${family} pods need about ${2 * pods} neighbour entries, the kernel keeps ${limit} (net.ipv${family}.neigh.default.gc_thresh3, shared by all namespaces): some pods may be unreachable`);
    }
  }
  return warnings;
}
