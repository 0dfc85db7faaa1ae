/**
 * The differential check of one node: its rules in a lab, the flows of flows.ts sent through the
 * kernel, each judged against kpsim's trace of the same rules (verify.ts). What CI runs on every
 * example cluster, and what `kpsim trace --verify` runs for one flow.
 */
import { driverOf } from '../node/modes.js';
import type { Family } from '../util/ip.js';
import { type FlowCase, type FlowPlanOptions, planFlows } from './flows.js';
import type { LabMode } from './kernel-modes.js';
import { type LabInput, type LabUpOptions, compileForLab, labUp } from './lab.js';
import { type ProbeFlow, probe } from './probe.js';
import { type CaseReport, PathIndex, verifyCase } from './verify.js';

/** The significance level of each case's chi-square test (see README: kernel lab). */
export const DEFAULT_ALPHA = 1e-6;

export interface DifferentialOptions extends FlowPlanOptions {
  readonly mode: LabMode;
  readonly alpha?: number;
  /** Only the cases this keeps (all by default). */
  readonly filter?: (c: FlowCase) => boolean;
  /** How the lab is made (its id, where it is recorded, whether the pods serve); the rest the check decides. */
  readonly lab?: Pick<LabUpOptions, 'id' | 'stateDir' | 'namePrefix' | 'servers'>;
}

export interface DifferentialReport {
  readonly cases: readonly CaseReport[];
  readonly skipped: readonly string[];
  readonly tries: number;
  /** Wall time: lab up, probing, lab down. */
  readonly ms: { readonly up: number; readonly probe: number; readonly down: number };
}

export async function checkNode(input: LabInput, opts: DifferentialOptions): Promise<DifferentialReport> {
  const rulesets = compileForLab(input, opts.mode);
  const tracers = new Map(rulesets.map((r) => [r.family, r.compiled]));
  const driver = driverOf(rulesets[0]!.compiled);
  const tracerFor = (family: Family) => driver.tracer(tracers.get(family)!);
  const reserved = [...input.node.ips, ...input.states.flatMap((s) => s.servicePorts.flatMap((sp) => sp.categorized.allReachableEndpoints.map((e) => e.ip)))];
  const plan = planFlows(input.states, tracerFor, reserved, opts);
  const cases = plan.cases.filter(opts.filter ?? (() => true));
  const servers = opts.lab?.servers ?? true;

  const t0 = performance.now();
  const lab = await labUp(input, {
    ...opts.lab, mode: opts.mode, rulesets, clientSources: plan.clientSources, servers,
    placeEndpoint: (ip) => plan.endpointIPs.has(ip),
  });
  const t1 = performance.now();
  try {
    const flows: ProbeFlow[] = [];
    const owner: number[] = [];
    cases.forEach((c, i) => {
      c.sources.forEach((src, n) => {
        flows.push({ proto: c.proto, src, dst: c.dst, dport: c.dport, tries: c.triesPerSource, traced: n < c.tracedSources ? c.tracedPerSource : 0, sequential: c.sequential, timeoutMs: c.timeoutMs });
        owner.push(i);
      });
    });
    const result = await probe(lab, flows);
    const index = new PathIndex(lab.kernel, rulesets, result.handles, result.kernelRules);
    const triesByCase = cases.map((): (typeof result.tries[number] & { src: string })[] => []);
    for (const t of result.tries) triesByCase[owner[t.flow]!]!.push({ ...t, src: flows[t.flow]!.src });
    const reports = cases.map((c, i) => verifyCase(c, triesByCase[i]!, tracerFor(c.family), index, { alpha: opts.alpha ?? DEFAULT_ALPHA, servers }));
    const t2 = performance.now();
    await lab.down();
    return { cases: reports, skipped: plan.skipped, tries: result.tries.length, ms: { up: t1 - t0, probe: t2 - t1, down: performance.now() - t2 } };
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
}
