/**
 * `kpsim lab sync-bench`: what a sync costs the kernel, beside what it costs kpsim to compile.
 * A cluster (given, or generated: N services of E endpoints) is compiled in each mode and loaded
 * into a namespace of its own; then, timed: kube-proxy's full sync of the same rules, and the
 * sync after a one-service change (one endpoint added to one service), partial in iptables mode
 * (iptables-restore --noflush with the changed chains only), incremental in nftables mode (a
 * transaction of the changed chains and elements), and a sync after no change, each written by
 * the agent's rules writer for the mode (kernel-modes.ts syncSteps). Each is the median of a few
 * runs of the tool, start to exit.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KpsimError } from '../errors.js';
import { clusterFromManifests } from '../manifest/load.js';
import type { Cluster } from '../model/types.js';
import { type ResolvedNode, buildProxierStates, resolveNode } from '../tracker/proxier-state.js';
import type { Family } from '../util/ip.js';
import { inNamespace, run } from './exec.js';
import { type LabMode, kernelMode, labUnavailable } from './kernel-modes.js';
import { compileForLab, labDriver } from './lab.js';
import { addToAddress } from './plan.js';
import { namePrefix } from './state.js';

export interface SyncBenchRow {
  readonly mode: LabMode;
  readonly services: number;
  readonly endpoints: number;
  /** kpsim's compile and render of the whole ruleset, ms (median). */
  readonly compileMs: number;
  /** The first load into an empty namespace (with the built-in chains' jumps), ms. */
  readonly loadMs: number;
  /** The kernel taking a full sync over the loaded rules, ms (median): the tool's process, start to exit. */
  readonly fullMs: number;
  /** The kernel taking the one-service sync, ms (median). */
  readonly partialMs: number;
  /** A sync after no change (what a partial or incremental sync writes anyway), ms (median). */
  readonly noChangeMs: number;
  readonly fullBytes: number;
  readonly partialBytes: number;
  readonly noChangeBytes: number;
  /** What the full and partial syncs are called in this mode. */
  readonly fullName: string;
  readonly partialName: string;
}

export interface SyncBenchResult {
  readonly rows: readonly SyncBenchRow[];
  /** Modes left out, with why. */
  readonly skipped: readonly string[];
}

export interface SyncBenchOptions {
  readonly modes: readonly LabMode[];
  /** Runs per figure; the median is kept. Default 3. */
  readonly runs?: number;
  readonly namePrefix?: string;
  readonly onStep?: (line: string) => void;
}

/** The cluster after a one-service change: one more endpoint in the first slice that has any. */
export function withOneServiceChanged(cluster: Cluster): Cluster {
  return oneServiceChange(cluster).cluster;
}

/** withOneServiceChanged, and the Service it changed ("namespace/name"). */
export function oneServiceChange(cluster: Cluster): { cluster: Cluster; service: string } {
  const slices = cluster.endpointSlices.map((s) => ({ ...s, endpoints: [...s.endpoints] }));
  const slice = slices.find((s) => s.endpoints.length > 0 && s.addressType !== 'FQDN');
  if (slice === undefined) throw new KpsimError('KPSIM_ERR_MODEL_INVALID', 'the cluster has no endpoint to change: sync-bench needs a service with endpoints');
  const taken = new Set(cluster.endpointSlices.flatMap((s) => s.endpoints.map((e) => e.addresses[0])));
  const template = slice.endpoints[0]!;
  let ip = template.addresses[0]!;
  do ip = addToAddress(ip, 1)!; while (taken.has(ip));
  slice.endpoints.push({ ...template, addresses: [ip], targetRef: { kind: 'Pod', name: 'sync-bench-new-pod' } });
  return { cluster: { ...cluster, endpointSlices: slices }, service: `${slice.namespace}/${slice.serviceName}` };
}

export async function runSyncBench(cluster: Cluster, node: ResolvedNode, opts: SyncBenchOptions): Promise<SyncBenchResult> {
  const runs = opts.runs ?? 3;
  const say = opts.onStep ?? ((): void => undefined);
  const before = { node, states: buildProxierStates(cluster, node) };
  const change = oneServiceChange(cluster);
  const after = { node, states: buildProxierStates(change.cluster, node) };
  const rows: SyncBenchRow[] = [];
  const skipped: string[] = [];
  for (const mode of opts.modes) {
    const why = labUnavailable(mode);
    if (why !== undefined) {
      skipped.push(why);
      continue;
    }
    const kernel = kernelMode(mode);
    const driver = labDriver(mode);
    for (const family of before.states.map((s) => s.family as Family)) {
      const stateBefore = before.states.find((s) => s.family === family)!;
      const stateAfter = after.states.find((s) => s.family === family)!;
      // What kube-proxy writes on each sync (no built-in jumps: those it ensures once, apart).
      const compileMs: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        driver.render(driver.compile(node, [stateBefore], {}), 'kube-proxy');
        compileMs.push(performance.now() - t0);
      }
      const syncs = kernel.syncSteps(stateBefore, stateAfter, change.service);
      const initial = compileForLab({ node, states: [stateBefore] }, mode)[0]!;
      const ns = `${opts.namePrefix ?? namePrefix()}-sync-${randomBytes(3).toString('hex')}`;
      await run(['ip', 'netns', 'add', ns]);
      // Interrupted (Ctrl-C, a kill): the namespace goes with the run (exit 130 or 143).
      const onSignal = (signal: NodeJS.Signals): void => {
        spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
        process.exit(signal === 'SIGINT' ? 130 : 143);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const services = stateBefore.servicePorts.length;
        const endpoints = stateBefore.servicePorts.reduce((n, sp) => n + sp.categorized.allReachableEndpoints.length, 0);
        say(`${mode} IPv${family}: ${services} service ports, ${endpoints} endpoints; loading ${Buffer.byteLength(initial.text)} bytes`);
        const loadMs = (await kernel.load(ns, family, initial.text)).ms;
        const timed = async (step: { argv: readonly string[]; input: string }): Promise<number> => (await run(inNamespace(ns, step.argv), { input: step.input, timeoutMs: 1_800_000 })).ms;
        const { full, forth, back, noChange } = syncs;
        const fullMs: number[] = [];
        for (let i = 0; i < runs; i++) fullMs.push(await timed(full));
        // One-service syncs there and back: each is the same size of change, and none needs a
        // full sync to set the stage for the next.
        const partialMs: number[] = [];
        for (let i = 0; i < runs; i++) partialMs.push(await timed(i % 2 === 0 ? forth : back));
        if (runs % 2 === 1) await timed(back);
        const noChangeMs: number[] = [];
        for (let i = 0; i < runs; i++) noChangeMs.push(await timed(noChange));
        rows.push({
          mode, services, endpoints, compileMs: median(compileMs), loadMs, fullMs: median(fullMs), partialMs: median(partialMs), noChangeMs: median(noChangeMs),
          fullBytes: Buffer.byteLength(full.input), partialBytes: Buffer.byteLength(forth.input), noChangeBytes: Buffer.byteLength(noChange.input),
          fullName: kernel.syncNames.full, partialName: kernel.syncNames.partial,
        });
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        await run(['ip', 'netns', 'del', ns], { allowFailure: true });
      }
    }
  }
  return { rows, skipped };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * A generated cluster for the bench: `services` services of `endpoints` endpoints each, on a
 * node and two others (a third of the endpoints local); every fourth service a NodePort.
 */
export function generatedCluster(services: number, endpoints: number): { cluster: Cluster; node: ResolvedNode } {
  const items: unknown[] = [
    { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', clusterCIDR: '10.64.0.0/10', hostnameOverride: 'node-1' },
    ...[1, 2, 3].map((n) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: `node-${n}` }, spec: { podCIDRs: [`10.${63 + n}.0.0/16`] }, status: { addresses: [{ type: 'InternalIP', address: `192.168.0.${10 + n}` }] } })),
  ];
  let pod = 0;
  for (let i = 0; i < services; i++) {
    const name = `svc-${i}`;
    const nodePort = i % 4 === 3;
    items.push({
      apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'bench', name },
      spec: {
        type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP: addToAddress('10.96.0.10', i), clusterIPs: [addToAddress('10.96.0.10', i)],
        ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, ...(nodePort ? { nodePort: 30000 + (i >> 2) % 2768 } : {}) }],
      },
    });
    items.push({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
      metadata: { namespace: 'bench', name: `${name}-abcde`, labels: { 'kubernetes.io/service-name': name } },
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: Array.from({ length: endpoints }, () => {
        const n = pod++;
        return { addresses: [addToAddress('10.64.0.2', n)], conditions: { ready: true, serving: true, terminating: false }, nodeName: `node-${1 + (n % 3)}` };
      }),
    });
  }
  const cluster = clusterFromManifests([{ file: 'sync-bench.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) }]);
  return { cluster, node: resolveNode(cluster) };
}
