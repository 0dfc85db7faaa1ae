/**
 * `kpsim demo`: the main job on a cluster, short and readable — what `npm start` runs on the
 * bundled example. It compiles the node's iptables rules and IPVS table, traces one packet per
 * kind of service the cluster has, and then compares the proxy modes on real traffic.
 *
 * `kpsim demo --churn` runs the self-healing scenario instead (src/load/churn.ts): no -f, its
 * own cluster of one Service and three pods, kpsim's API, `kpsim agent` in userspace mode and
 * load; one pod is killed under load and comes back.
 */
import type { Command } from 'commander';
import { KpsimError } from '../errors.js';
import { formatCompareReport, runCompare } from '../load/compare.js';
import { wantsLiveSource } from '../source/kubeconfig.js';
import { RULES_MODES, modeDriver } from '../node/modes.js';
import type { Packet, TraceResult } from '../trace/types.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import { type ClusterOptions, type LoadedCluster, action, addClusterOptions, loadClusterFromOptions, parseIntegerFlag, usageError } from './common.js';
import { summaryOf } from './command-table.js';

interface DemoOptions extends ClusterOptions {
  compare?: boolean;
  churn?: boolean;
  requests?: string;
  json?: boolean;
}

export function registerDemo(program: Command): void {
  const cmd = program.command('demo').description(summaryOf('demo'));
  addClusterOptions(cmd, { required: false })
    .option('--no-compare', 'skip the load comparison of the proxy modes')
    .option('--churn', 'the self-healing scenario: kill one of three pods under load, with kpsim serve, readiness probes and kpsim agent in userspace mode (no -f)')
    .option('--requests <n>', 'with --churn: requests counted in each phase', '2000')
    .option('--json', 'with --churn: print the report as JSON (kpsim.churn/v1)')
    .action(action(async (opts: DemoOptions) => {
      if (opts.churn) {
        if (opts.file !== undefined || wantsLiveSource(opts)) throw usageError('--churn', 'runs its own cluster: give no -f or live cluster with it');
        const requestsPerPhase = parseIntegerFlag('--requests', opts.requests ?? '2000', 10, 1_000_000);
        // The scenario brings the API server, the agent and client-node: loaded only when asked for.
        const { formatChurnReport, runChurn } = await import('../load/churn.js');
        const report = await runChurn({ requestsPerPhase, log: opts.quiet ? () => {} : (line) => process.stderr.write(`churn: ${line}\n`) });
        process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatChurnReport(report));
        return;
      }
      if (opts.file === undefined && !wantsLiveSource(opts)) {
        throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'no cluster given: -f PATH... (manifests), or a live cluster with --kubeconfig FILE, --context NAME or --server URL');
      }
      const loaded = await loadClusterFromOptions(opts);
      process.stdout.write(describeCompile(loaded));
      process.stdout.write(describeTraces(loaded));
      if (opts.compare === false) return;
      process.stdout.write('Proxy modes compared on one service (kpsim compare; real bytes on loopback for direct and userspace rows)\n');
      const report = await runCompare(loaded, { onProgress: (line) => process.stderr.write(`compare ${line}\n`) });
      process.stdout.write(formatCompareReport(report));
    }));
}

function describeCompile(loaded: LoadedCluster): string {
  const summaries = RULES_MODES.map((mode) => {
    const driver = modeDriver(mode);
    return driver.summarize(driver.compile(loaded.node, loaded.states));
  });
  const lines = [`Node ${loaded.node.name} (${loaded.node.ips.join(', ') || 'no addresses'})`];
  loaded.states.forEach((state, i) => {
    lines.push(`  IPv${state.family}: ${state.servicePorts.length} service ports; ${summaries.map((perFamily) => perFamily[i]!).join('; ')}`);
  });
  lines.push(`  (kpsim compile -f ... --mode ${RULES_MODES.join('|')} prints them)`, '');
  return lines.join('\n') + '\n';
}

interface DemoPacket {
  title: string;
  packet: Packet;
}

/** One packet per kind of service the cluster has, each from where such traffic comes from. */
export function demoPackets(state: ProxierState): DemoPacket[] {
  const podSource = podAddress(state);
  const external = state.family === 4 ? '203.0.113.9' : '2001:db8:ffff::9';
  const out: DemoPacket[] = [];
  const first = (pred: (sp: ProxierServicePort) => boolean): ProxierServicePort | undefined => state.servicePorts.find(pred);
  const proto = (sp: ProxierServicePort): Packet['proto'] => sp.info.protocol.toLowerCase() as Packet['proto'];
  const withEndpoints = [...state.servicePorts]
    .filter((sp) => !sp.info.internalPolicyLocal && sp.info.sessionAffinityTimeoutSeconds === 0)
    .sort((a, b) => b.categorized.allReachableEndpoints.length - a.categorized.allReachableEndpoints.length)[0];
  if (withEndpoints) {
    out.push({ title: `a pod connects to ${withEndpoints.info.spn} (ClusterIP)`, packet: { proto: proto(withEndpoints), src: podSource, dst: withEndpoints.info.clusterIP, dport: withEndpoints.info.port } });
  }
  const nodePort = first((sp) => sp.info.nodePort !== 0 && !sp.info.externalPolicyLocal);
  if (nodePort && state.nodeIPs[0]) {
    out.push({ title: `an outside client reaches ${nodePort.info.spn} on its NodePort`, packet: { proto: proto(nodePort), src: external, dst: state.nodeIPs[0], dport: nodePort.info.nodePort } });
  }
  const lb = first((sp) => sp.info.loadBalancerVIPs.length > 0);
  if (lb) {
    out.push({ title: `an outside client reaches ${lb.info.spn} at its load balancer IP`, packet: { proto: proto(lb), src: lb.info.loadBalancerSourceRanges.length > 0 ? sourceIn(lb.info.loadBalancerSourceRanges[0]!) : external, dst: lb.info.loadBalancerVIPs[0]!, dport: lb.info.port } });
    if (lb.info.loadBalancerSourceRanges.length > 0) {
      out.push({ title: `a client outside ${lb.info.spn}'s loadBalancerSourceRanges`, packet: { proto: proto(lb), src: external, dst: lb.info.loadBalancerVIPs[0]!, dport: lb.info.port } });
    }
  }
  const affinity = first((sp) => sp.info.sessionAffinityTimeoutSeconds > 0);
  if (affinity) {
    out.push({ title: `${affinity.info.spn} with ClientIP session affinity`, packet: { proto: proto(affinity), src: podSource, dst: affinity.info.clusterIP, dport: affinity.info.port } });
  }
  const empty = first((sp) => !sp.categorized.hasAnyEndpoints);
  if (empty) out.push({ title: `${empty.info.spn} has no endpoints`, packet: { proto: proto(empty), src: podSource, dst: empty.info.clusterIP, dport: empty.info.port } });
  const noLocal = first((sp) => sp.info.internalPolicyLocal && sp.categorized.hasAnyEndpoints && (sp.categorized.localEndpoints ?? []).length === 0);
  if (noLocal) out.push({ title: `${noLocal.info.spn} (internalTrafficPolicy Local) from a node without one`, packet: { proto: proto(noLocal), src: podSource, dst: noLocal.info.clusterIP, dport: noLocal.info.port } });
  return out;
}

function podAddress(state: ProxierState): string {
  const cidr = state.localDetector?.cidrs[0];
  if (cidr) return sourceIn(cidr, 77);
  return state.family === 4 ? '10.99.0.77' : 'fd00:99::77';
}

/** An address inside a CIDR (the network address plus `offset`), for example sources. */
function sourceIn(cidr: string, offset = 9): string {
  const [network] = cidr.split('/') as [string];
  if (network.includes(':')) return network.endsWith('::') ? `${network}${offset.toString(16)}` : network;
  const parts = network.split('.').map(Number);
  parts[3] = (parts[3]! + offset) & 255;
  return parts.join('.');
}

function describeTraces(loaded: LoadedCluster): string {
  const tracers = RULES_MODES.map((mode) => {
    const driver = modeDriver(mode);
    return { mode, tracer: driver.tracer(driver.compile(loaded.node, loaded.states)) };
  });
  const width = Math.max(...RULES_MODES.map((m) => m.length)) + 1;
  const lines: string[] = ['Packet traces (kpsim trace -f ... --src --dst --dport shows every rule crossed)'];
  for (const state of loaded.states) {
    for (const { title, packet } of demoPackets(state)) {
      lines.push(`  ${title}`, `    ${packet.proto} ${packet.src} -> ${joinHostPort(packet.dst, packet.dport)}`);
      for (const { mode, tracer } of tracers) lines.push(`    ${`${mode}:`.padEnd(width)} ${summarize(tracer.trace(packet))}`);
    }
  }
  return lines.join('\n') + '\n\n';
}

const BUILTIN_CHAINS: ReadonlySet<string> = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
const LOOKUP_TABLES: ReadonlySet<string> = new Set(['ipvs', 'ipset']);

function summarize(result: TraceResult): string {
  // kube-proxy's own chains: every chain the path entered but the kernel's built-in ones (the
  // IPVS tracer's `ipvs` and `ipset` hops are lookups, not chains).
  const chains = [...new Set(result.hops.filter((h) => !LOOKUP_TABLES.has(h.table) && !BUILTIN_CHAINS.has(h.chain)).map((h) => `${h.table} ${h.chain}`))].length;
  const endpoints = result.endpoints.map((e) => `${e} ${(100 * (result.probabilities[e] ?? 0)).toFixed(1)}%`).join(', ');
  const masq = result.masquerade ? ', masqueraded' : '';
  return `${result.verdict}${endpoints === '' ? '' : ` to ${endpoints}`}${masq} (${chains} kube-proxy chains)`;
}
