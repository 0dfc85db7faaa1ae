/**
 * `kpsim trace --verify`: one flow through a lab as well, the kernel's answer beside kpsim's.
 * The lab is made for the flow (its source given to the client, unless it is the node's or a
 * pod's address), the flow sent `tries` times, each judged as the differential check judges
 * (verify.ts), and the lab removed.
 */
import { KpsimError } from '../errors.js';
import type { Packet } from '../trace/types.js';
import { driverOf } from '../node/modes.js';
import { type Family, ipFamily, isLoopback, joinHostPort, splitHostPort } from '../util/ip.js';
import type { FlowCase } from './flows.js';
import { TRACED_PER_CASE, predictedCategories } from './flows.js';
import { isDnat, isSnat } from './kernel-text.js';
import { type LabMode, labUnavailable } from './kernel-modes.js';
import { withLab } from './kernel-load.js';
import { type LabInput, type LabUpOptions, compileForLab } from './lab.js';
import { DEFAULT_CLIENT } from './plan.js';
import { type TryOutcome, probe } from './probe.js';
import { DEFAULT_ALPHA } from './differential.js';
import { LOST_RECORD, type PathComparison, type PathStep, PathIndex, formatPaths, kernelCategory, verifyCase } from './verify.js';

export interface KernelTry {
  readonly sport: number;
  /** What the client saw. */
  readonly outcome: TryOutcome;
  /** An endpoint ("10.244.0.5:8080"), REJECT, DROP or NONE; "A|B" when the kernel's records cannot tell; LOST when it connected and the kernel kept no record (not judged). */
  readonly result: string;
  /** The source the endpoint saw, when conntrack shows it was changed (masquerade). */
  readonly snatTo?: string;
  readonly masquerade?: boolean;
  /** The rules the packet matched, as nft's trace saw them (traced tries). */
  readonly path?: readonly PathStep[];
}

/** The `kernel` field of `kpsim trace --verify --json`. */
export interface KernelVerification {
  readonly mode: LabMode;
  readonly lab: string;
  readonly tries: readonly KernelTry[];
  /** Tries per result. */
  readonly picks: Readonly<Record<string, number>>;
  /** kpsim's path to each result the kernel reached, beside the kernel's. */
  readonly paths: readonly PathComparison[];
  /** True when nothing the kernel did disagrees with the trace. */
  readonly agrees: boolean;
  readonly problems: readonly string[];
}

export interface VerifyPacketOptions {
  readonly mode: LabMode;
  readonly fromNode?: boolean;
  /** Connections (datagrams) to send; default 1. */
  readonly tries?: number;
  readonly lab?: Omit<LabUpOptions, 'mode'>;
}

export async function verifyPacket(input: LabInput, packet: Packet, opts: VerifyPacketOptions): Promise<KernelVerification> {
  const why = labUnavailable(opts.mode);
  if (why !== undefined) throw new KpsimError('KPSIM_ERR_LAB_UNAVAILABLE', why);
  if (packet.proto === 'sctp') throw new KpsimError('KPSIM_ERR_LAB_UNAVAILABLE', 'the kernel lab sends TCP and UDP only (Node has no SCTP sockets)');
  const family = ipFamily(packet.dst) as Family;
  if (!input.states.some((s) => s.family === family)) throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `the cluster has no IPv${family} proxier for the lab to run`, { path: 'packet.dst' });
  const rulesets = compileForLab(input, opts.mode);
  const ruleset = rulesets.find((r) => r.family === family)!;
  const tracer = driverOf(ruleset.compiled).tracer(ruleset.compiled);
  const predicted = tracer.trace(packet, opts.fromNode !== undefined ? { fromNode: opts.fromNode } : {});
  const fromNode = predicted.origin === 'OUTPUT';
  // A source the lab does not hold already (the node's, a pod's) is given to the client.
  const clientSources = holds(input, packet.src) ? undefined : [packet.src, ...input.states.map((s) => DEFAULT_CLIENT[s.family])];
  const tries = opts.tries ?? 1;
  const c: FlowCase = {
    name: `${packet.proto} ${packet.src} -> ${joinHostPort(packet.dst, packet.dport)}`,
    kind: fromNode ? 'node' : 'external', spn: '', family, proto: packet.proto, dst: packet.dst, dport: packet.dport, fromNode,
    sources: [packet.src], triesPerSource: tries, tracedPerSource: Math.min(tries, TRACED_PER_CASE), tracedSources: 1,
    sequential: true, coverage: false, timeoutMs: predictedCategories(predicted).has('DROP') ? 300 : 2000, predicted,
  };
  // Pods for the endpoints the trace predicts (and the source's own): a large cluster's other
  // thousand pods would cost namespaces and time, and a disagreeing kernel is seen in conntrack anyway.
  const wanted = new Set([...predicted.endpoints.map((e) => splitHostPort(e)?.ip), packet.src]);
  const lab = { ...opts.lab, mode: opts.mode, rulesets, placeEndpoint: (ip: string) => wanted.has(ip), ...(clientSources !== undefined ? { clientSources } : {}) };
  return withLab(input, lab, async (lab) => {
    const result = await probe(lab, [{ proto: c.proto, src: packet.src, dst: c.dst, dport: c.dport, tries, traced: c.tracedPerSource, sequential: true, timeoutMs: c.timeoutMs }]);
    const index = new PathIndex(lab.kernel, rulesets, result.handles, result.kernelRules);
    const report = verifyCase(c, result.tries.map((t) => ({ ...t, src: packet.src })), tracer, index, { alpha: DEFAULT_ALPHA, servers: true });
    const kernelTries: KernelTry[] = [...result.tries].sort((a, b) => a.order - b.order).map((t) => ({
      sport: t.sport,
      outcome: t.outcome,
      result: kernelCategory(t, index),
      ...(t.conntrack !== undefined && isSnat(t.conntrack) ? { snatTo: joinHostPort(t.conntrack.replyDestination.ip, t.conntrack.replyDestination.port) } : {}),
      ...(t.conntrack !== undefined && isDnat(t.conntrack) ? { masquerade: isSnat(t.conntrack) } : {}),
      ...(t.trace !== undefined ? { path: index.kernelPath(t.trace.events) } : {}),
    }));
    return { mode: opts.mode, lab: lab.state.id, tries: kernelTries, picks: report.kernel, paths: report.paths, agrees: report.problems.length === 0, problems: report.problems };
  });
}

/** Whether the lab has the address already: the node's, loopback, or an endpoint's pod. */
function holds(input: LabInput, ip: string): boolean {
  if (input.node.ips.includes(ip) || isLoopback(ip)) return true;
  return input.states.some((s) => s.servicePorts.some((sp) => sp.categorized.allReachableEndpoints.some((e) => e.ip === ip)));
}

/** The kernel's side for people: each try, then each path beside kpsim's with the first difference marked. */
export function formatKernelVerification(v: KernelVerification): string {
  const lines = [`kernel (${v.mode} rules in lab ${v.lab}): ${v.tries.length} ${v.tries.length === 1 ? 'try' : 'tries'}`];
  v.tries.forEach((t, i) => {
    const nat = t.snatTo !== undefined ? `, masqueraded to ${t.snatTo}` : t.masquerade === false ? ', not masqueraded' : '';
    lines.push(`  try ${i + 1} (source port ${t.sport}): ${describe(t.result)}${nat}; the client saw ${t.outcome}`);
  });
  for (const p of v.paths) {
    lines.push(`path to ${p.category}, kernel (nft monitor trace) beside kpsim${p.firstDifference >= 0 ? `; first difference at step ${p.firstDifference + 1} (>>)` : ': the same'}:`);
    lines.push(...formatPaths(p.kernel, p.trace, p.firstDifference).split('\n').map((l) => `  ${l}`));
  }
  lines.push(`kernel and kpsim ${v.agrees ? 'agree' : 'disagree'}`);
  for (const problem of v.problems) lines.push(`  ${problem.split('\n')[0]}`);
  return `${lines.join('\n')}\n`;
}

function describe(result: string): string {
  if (result === 'NONE') return 'no NAT (let through)';
  if (result === LOST_RECORD) return 'let through, where to unknown (the kernel kept no record of it: left out)';
  if (result.includes('|')) return `${result.split('|').join(' or ')} (no connection was recorded)`;
  if (result === 'REJECT' || result === 'DROP') return result;
  return `DNAT to ${result} (conntrack)`;
}
