/**
 * kube-proxy's IPVS mode as a mode driver: the IPVS table with its ipsets and iptables rules
 * (one per family), printed as ipvsadm, ipset and iptables-save print them, the IPVS tracer,
 * and connections placed by the kernel's scheduler with its connection table.
 */
import { compileIpvs, countIpvs, countTable, type IpvsCompiled, type IpvsCompileOptions, type IpvsCounts } from '../../ipvs/compile.js';
import { IpvsSharedWork } from '../../ipvs/shared-plans.js';
import { renderIPSets } from '../../ipvs/ipsets.js';
import { type IpvsadmListOptions, formatIpvsadmList, formatIpvsadmListBytes } from '../../ipvs/ipvsadm-format.js';
import { liveServiceOf } from '../../ipvs/live-service.js';
import { destAddr, type IpvsTable } from '../../ipvs/table.js';
import { KpsimError } from '../../errors.js';
import { ipvsPicker } from '../../simulate/picker.js';
import { traceIpvs } from '../../trace/ipvs.js';
import { type ResolvedNode, mapStatesSmallestFirst } from '../../tracker/proxier-state.js';
import type { ProxierState } from '../../tracker/types.js';
import { ipFamily, joinHostPort } from '../../util/ip.js';
import { seededRng } from '../../util/random.js';
import type { CompiledNode, ModeCompileOptions, ModeDriver, ModeSize, OutputFormat, SimulationTarget } from '../mode-driver.js';
import { rulePositions, rulesCheckedOnPath } from '../rules-checked.js';
import type { NodeTracer } from '../trace-context.js';
import { renderRulesetsPerFamily } from './iptables.js';

export interface CompiledIpvsNode extends CompiledNode {
  readonly mode: 'ipvs';
  /** One per family, IPv4 first. */
  readonly tables: readonly IpvsCompiled[];
}

export function compileIpvsForStates(node: ResolvedNode, states: readonly ProxierState[], opts: ModeCompileOptions = {}): CompiledIpvsNode {
  const options = ipvsOptions(opts);
  return { mode: 'ipvs', node, states, tables: mapStatesSmallestFirst(states, (state) => compileIpvs(state, options)) };
}

function ipvsOptions(opts: ModeCompileOptions): IpvsCompileOptions {
  return {
    ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}),
    ...(opts.randomFully !== undefined ? { randomFully: opts.randomFully } : {}),
    ...(opts.gracefulTermination !== undefined ? { gracefulTermination: opts.gracefulTermination } : {}),
    ...(opts.shared instanceof IpvsSharedWork ? { shared: opts.shared } : {}),
    ...(opts.onlyServicePorts !== undefined ? { onlyServicePorts: opts.onlyServicePorts } : {}),
    ...(opts.servicePortPositions !== undefined ? { servicePortPositions: opts.servicePortPositions } : {}),
  };
}

function ipvsSize(counts: readonly IpvsCounts[]): ModeSize {
  let virtualServers = 0;
  let realServers = 0;
  for (const c of counts) {
    virtualServers += c.virtualServers;
    realServers += c.realServers;
  }
  return { count: virtualServers, unit: 'virtual servers', details: { 'real servers': realServers } };
}

/**
 * The kernel keeps one IPVS table for both families, and `ipvsadm -Ln` lists it as one: the
 * families' virtual servers are listed together, in ipvsadm's order.
 */
export function kernelTableOf(compiled: CompiledIpvsNode): IpvsTable {
  return compiled.tables.length === 1 ? compiled.tables[0]!.table : { services: compiled.tables.flatMap((t) => t.table.services) };
}

const tracers = new WeakMap<CompiledIpvsNode, NodeTracer>();
function tracerOf(compiled: CompiledIpvsNode): NodeTracer {
  let tracer = tracers.get(compiled);
  if (!tracer) {
    tracer = {
      trace: (packet, opts = {}) => {
        const family = ipFamily(String(packet.dst));
        const table = compiled.tables.find((t) => t.family === family) ?? (family === undefined ? compiled.tables[0] : undefined);
        if (!table) {
          throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${family} packet, but node ${compiled.node.name} has no IPv${family} IPVS table`, { path: 'packet.dst' });
        }
        return traceIpvs(table, packet, opts);
      },
    };
    tracers.set(compiled, tracer);
  }
  return tracer;
}

function virtualServerFor(compiled: CompiledIpvsNode, target: SimulationTarget) {
  const table = compiled.tables.find((t) => t.family === target.state.family);
  const protocol = target.proto.toUpperCase();
  const vs = table?.table.services.find((s) => s.address === target.address && s.port === target.port && s.protocol === protocol);
  if (vs === undefined) throw new Error(`IPVS mode has no virtual server for ${joinHostPort(target.address, target.port)}/${protocol}`);
  return vs;
}

/** IPVS-mode iptables tables the packet is checked against (the rest of a trace is IPVS itself). */
const IPTABLES_TABLES: ReadonlySet<string> = new Set(['raw', 'mangle', 'nat', 'filter']);

/** ipvsadm -Ln's options for a listing format: a freshly compiled table has zero counters (--stats and --rate show zeros). */
function listOptions(format: OutputFormat): IpvsadmListOptions {
  return { ...(format === 'stats' ? { stats: true } : {}), ...(format === 'rate' ? { rate: true } : {}) };
}

export const ipvsDriver: ModeDriver<CompiledIpvsNode> = {
  mode: 'ipvs',
  describe: 'the IPVS table as ipvsadm -Ln lists it',
  formats: ['kube-proxy', 'stats', 'rate', 'ipsets', 'iptables'],
  options: ['scheduler', 'randomFully'],
  connectionTable: 'ipvs',
  compile: compileIpvsForStates,
  render(compiled, format) {
    switch (format) {
      case 'ipsets':
        // One `ipset save` of every family's sets (the KUBE-6- ones after the IPv4 ones).
        return renderIPSets(compiled.tables.flatMap((t) => [...t.ipsets.values()]));
      case 'iptables':
        return renderRulesetsPerFamily(compiled.node, compiled.tables.map((t) => t.ruleset));
      default:
        return formatIpvsadmList(kernelTableOf(compiled), listOptions(format));
    }
  },
  renderBytes(compiled, format) {
    if (format === 'ipsets' || format === 'iptables') return undefined;
    return formatIpvsadmListBytes(kernelTableOf(compiled), listOptions(format));
  },
  tracer: tracerOf,
  summarize: (compiled) => compiled.tables.map((t) => `IPVS mode: ${t.table.services.length} virtual servers`),
  shareAcrossNodes: () => new IpvsSharedWork(),
  size: (compiled) => ipvsSize(compiled.tables.map(countTable)),
  sizeOf(_node, states, opts = {}) {
    const options = ipvsOptions(opts);
    return ipvsSize(mapStatesSmallestFirst(states, (state) => countIpvs(state, options)));
  },
  variants: (schedulers) => schedulers.map((scheduler) => ({ scheduler, options: { scheduler } })),
  picker(compiled, target, opts) {
    const vs = virtualServerFor(compiled, target);
    const config = target.state.config;
    const live = liveServiceOf(vs, { rng: opts.rng ?? seededRng(opts.seed) });
    // kube-proxy sets net.ipv4.vs.expire_nodest_conn=1 and its configured timeouts (ipvsadm --set).
    return ipvsPicker(live, {
      expireNodestConn: true,
      ...(config.ipvsTCPTimeoutSeconds > 0 || config.ipvsTCPFinTimeoutSeconds > 0
        ? { tcpTimeoutsSeconds: {
          ...(config.ipvsTCPTimeoutSeconds > 0 ? { ESTABLISHED: config.ipvsTCPTimeoutSeconds } : {}),
          ...(config.ipvsTCPFinTimeoutSeconds > 0 ? { FIN_WAIT: config.ipvsTCPFinTimeoutSeconds } : {}),
        } }
        : {}),
      ...(config.ipvsUDPTimeoutSeconds > 0 ? { udpTimeoutSeconds: config.ipvsUDPTimeoutSeconds } : {}),
    });
  },
  expectedShares(compiled, target) {
    // Weight-proportional: what every scheduler aims at over time (draining weight-0 dests get none).
    const vs = virtualServerFor(compiled, target);
    const totalWeight = vs.dests.reduce((sum, d) => sum + d.weight, 0);
    return new Map(vs.dests.map((d) => [destAddr(d), totalWeight > 0 ? d.weight / totalWeight : 0]));
  },
  rulesPerLookup(compiled, packets) {
    const positions = rulePositions(compiled.tables.map((t) => t.ruleset));
    let checked = 0;
    packets.forEach((packet, i) => {
      const result = tracerOf(compiled).trace(packet, { seed: i + 1 });
      const hops = (result.sample?.hops ?? result.hops).filter((hop) => IPTABLES_TABLES.has(hop.table));
      checked += rulesCheckedOnPath(hops, positions);
    });
    return packets.length > 0 ? checked / packets.length : 0;
  },
};
