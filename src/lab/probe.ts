/**
 * Probing a lab: new connections (TCP) and datagrams (UDP) sent from the namespaces that hold
 * their source addresses, through the node, with what the kernel did to each read back from
 * its own records: conntrack's NAT (which endpoint the DNAT chose, whether the source was
 * masqueraded) and nft's trace (every rule the first packet matched, with its handle).
 *
 * Each try has its own source port, so that its conntrack entry and its trace are told apart
 * from every other's. Only tries from the traced port range are traced (a `meta nftrace set 1`
 * rule on the source port, in a table of kpsim's own at a priority before the raw table), so
 * that a thousand untraced tries to measure a distribution do not flood the trace. Each prober
 * first sends a canary datagram and waits until both monitors have seen it: then they are
 * listening, whatever a busy machine did to their start-up.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { KpsimError } from '../errors.js';
import { type Family, ipFamily } from '../util/ip.js';
import { inNamespace, type Monitor, run, startMonitor } from './exec.js';
import { type ConntrackEntry, type FlowKey, type L4, TRACE_TABLE, type TracedPacket, flowKeyText, parseConntrack, parseNftTrace, parseRuleHandles, sourceKeyText } from './kernel-text.js';
import type { Lab } from './lab.js';
import { type LabPlan, namespaceOf } from './plan.js';

export interface ProbeFlow {
  readonly proto: L4;
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
  readonly tries: number;
  /** The first this many tries are traced. */
  readonly traced: number;
  /** One try at a time, in order (ClientIP affinity: each try sees what the one before left). */
  readonly sequential?: boolean;
  /** How long a TCP connect may take before it counts as dropped. Default 1000 ms. */
  readonly timeoutMs?: number;
}

export type TryOutcome = 'connected' | 'refused' | 'timeout' | 'unreachable' | 'sent' | 'busy' | 'error';

export interface ProbeTry {
  readonly flow: number;
  /** Order in which its prober made it (tries of one prober are in this order). */
  readonly order: number;
  readonly sport: number;
  readonly traced: boolean;
  readonly outcome: TryOutcome;
  readonly conntrack?: ConntrackEntry;
  readonly trace?: TracedPacket;
}

export interface ProbeResult {
  readonly tries: readonly ProbeTry[];
  /** Each chain's rule handles in order, as the kernel lists them ("ip nat KUBE-SERVICES" → handles). */
  readonly handles: ReadonlyMap<string, readonly number[]>;
  /** Each chain's rule texts as the kernel prints them back (iptables-save, nft list), same keys. */
  readonly kernelRules: ReadonlyMap<string, readonly string[]>;
  readonly ms: number;
}

/** Source port ranges, per source address. */
const CANARY_PORT = 9900;
const TRACED_PORTS = { first: 10_000, last: 29_999 };
const UNTRACED_PORTS = { first: 30_000, last: 65_499 };

/** The table that marks the lab's traced tries. Priority -350: before conntrack and the raw table. */
function traceTableScript(): string {
  const mark = (l4: L4): string => `${l4} sport ${CANARY_PORT}-${TRACED_PORTS.last}${l4 === 'tcp' ? ' tcp flags & (fin | syn | rst | ack) == syn' : ''} meta nftrace set 1`;
  const chain = (hook: string): string =>
    `  chain ${hook} {\n    type filter hook ${hook} priority -350; policy accept;\n${(['tcp', 'udp', 'sctp'] as const).map((l4) => `    ${mark(l4)}\n`).join('')}  }\n`;
  // Marked again at every hook: some paths (bridged frames passed up to the node) lose the mark.
  return `table inet ${TRACE_TABLE} {\n${['prerouting', 'output', 'input', 'forward', 'postrouting'].map(chain).join('')}}\n`;
}

interface ProberJob {
  readonly canary: { readonly src: string; readonly sport: number; readonly dst: string };
  readonly flows: readonly (ProbeFlow & { readonly index: number; readonly sports: readonly number[] })[];
}

/**
 * The prober, run with `node -e` in a source namespace: job on stdin, then "go" once the monitors
 * listen. Writes {"canary":true}, then {"tries":[[flow, order, sport, outcome], …]}.
 */
const PROBER = String.raw`
const net = require('node:net'), dgram = require('node:dgram'), readline = require('node:readline');
const lines = readline.createInterface({ input: process.stdin });
const it = lines[Symbol.asyncIterator]();
const say = (m) => process.stdout.write(JSON.stringify(m) + '\n');
function tcpTry(f, sport) {
  return new Promise((resolve) => {
    const s = net.connect({ host: f.dst, port: f.dport, localAddress: f.src, localPort: sport });
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, f.timeoutMs || 1000);
    s.once('connect', () => { clearTimeout(timer); s.resetAndDestroy(); resolve('connected'); });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'EADDRINUSE' ? 'busy'
        : (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') ? 'unreachable' : e.code === 'ECONNRESET' ? 'connected' : 'error');
    });
  });
}
function udpTry(f, sport) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(f.src.includes(':') ? 'udp6' : 'udp4');
    s.once('error', (e) => { s.close(); resolve(e.code === 'EADDRINUSE' ? 'busy' : 'error'); });
    s.bind({ address: f.src, port: sport, exclusive: true }, () => s.send('kpsim', f.dport, f.dst, (err) => { s.close(); resolve(err ? 'error' : 'sent'); }));
  });
}
(async () => {
  const job = JSON.parse((await it.next()).value);
  const c = dgram.createSocket(job.canary.src.includes(':') ? 'udp6' : 'udp4');
  await new Promise((r) => c.bind({ address: job.canary.src, port: job.canary.sport }, r));
  await new Promise((r) => c.send('kpsim canary', 9, job.canary.dst, () => r()));
  c.close();
  say({ canary: true });
  await it.next();
  const out = [];
  let order = 0;
  // Traced tries one at a time: a burst of traced packets overruns nft's monitor, which then
  // loses events silently. Untraced tries go 64 at a time, unless the flow is sequential.
  const run = async (f, sports, width) => {
    const tryOne = f.proto === 'udp' ? udpTry : tcpTry;
    let next = 0;
    const worker = async () => {
      while (next < sports.length) {
        const sport = sports[next++];
        const n = order++;
        out.push([f.index, n, sport, await tryOne(f, sport)]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, sports.length) }, worker));
  };
  for (const f of job.flows) {
    await run(f, f.sports.slice(0, f.traced), 1);
    await run(f, f.sports.slice(f.traced), f.sequential ? 1 : 64);
  }
  say({ tries: out });
  lines.close();
})().catch((e) => { say({ error: String(e && e.stack || e) }); process.exit(1); });
`;

/** Where a source address sends from: the namespace holding it. */
export function sourceNamespace(plan: LabPlan, src: string): string {
  const ns = namespaceOf(plan, src);
  if (ns === undefined) throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `no namespace of the lab holds ${src}: give it to the client (--client-ip ${src})`);
  return ns;
}

/** The address a prober's canary goes to: one the node answers, reached the way its tries go. */
function canaryDestination(plan: LabPlan, ns: string, family: Family): string {
  if (ns === plan.names.node) return plan.fabricAddresses[family]!;
  const pod = plan.pods.find((p) => p.ns === ns);
  return pod?.placement === 'local' ? plan.podGateways[family]! : plan.fabricAddresses[family]!;
}

/** Runs every flow and reads back what the kernel did with each try. */
export async function probe(lab: Lab, flows: readonly ProbeFlow[]): Promise<ProbeResult> {
  const started = performance.now();
  const node = lab.plan.names.node;
  const groups = groupBySource(lab.plan, flows);
  await lab.kernel.resetAffinity(node);
  await run(inNamespace(node, ['conntrack', '-F']), { allowFailure: true });
  await run(inNamespace(node, ['nft', '-f', '-']), { input: traceTableScript() });
  const listing = await run(inNamespace(node, ['nft', '-a', 'list', 'ruleset']));
  const kernelRules = await lab.kernel.kernelRuleTexts(node, lab.rulesets.map((r) => r.family));
  const trace = startMonitor(inNamespace(node, ['nft', '-a', 'monitor', 'trace']));
  const conntrack = startMonitor(inNamespace(node, ['conntrack', '-E', '-e', 'NEW', '-o', 'extended', '--buffer-size', '33554432']));
  const collected: { flow: number; order: number; sport: number; outcome: TryOutcome; src: string }[] = [];
  let traceText = '';
  let conntrackText = '';
  try {
    let canary = CANARY_PORT;
    for (const group of groups) {
      const job: ProberJob = {
        canary: { src: group.flows[0]!.src, sport: canary++, dst: canaryDestination(lab.plan, group.ns, ipFamily(group.flows[0]!.src)!) },
        flows: group.flows,
      };
      const tries = await runProber(group.ns, job, () => monitorsHeard([trace, conntrack], job.canary.src, job.canary.sport));
      const byIndex = new Map(group.flows.map((f) => [f.index, f]));
      for (const [flow, order, sport, outcome] of tries) collected.push({ flow, order, sport, outcome, src: byIndex.get(flow)!.src });
    }
    await quiet([trace, conntrack]);
  } finally {
    traceText = await trace.stop();
    conntrackText = await conntrack.stop();
    // What the kernel's monitors printed, kept for a person to read when a path looks wrong.
    const keep = process.env['KPSIM_LAB_TRACE_LOG'];
    if (keep) writeFileSync(keep, `${traceText}\n# conntrack -E\n${conntrackText}`);
    await run(inNamespace(node, ['nft', 'delete', 'table', 'inet', TRACE_TABLE]), { allowFailure: true });
  }
  const entries = new Map(parseConntrack(conntrackText).map((e) => [flowKeyText(e.key), e]));
  const traces = new Map<string, TracedPacket>();
  for (const packet of parseNftTrace(traceText)) if (packet.key !== undefined) traces.set(sourceKeyText(packet.key), packet);
  const tries: ProbeTry[] = collected.map((t) => {
    const f = flows[t.flow]!;
    const key: FlowKey = { proto: f.proto, src: t.src, sport: t.sport, dst: f.dst, dport: f.dport };
    const entry = entries.get(flowKeyText(key));
    const packet = traces.get(sourceKeyText(key));
    return { flow: t.flow, order: t.order, sport: t.sport, traced: t.sport <= TRACED_PORTS.last, outcome: t.outcome, ...(entry ? { conntrack: entry } : {}), ...(packet ? { trace: packet } : {}) };
  });
  return { tries, handles: parseRuleHandles(listing.stdout), kernelRules, ms: performance.now() - started };
}

interface SourceGroup {
  readonly ns: string;
  readonly flows: (ProbeFlow & { index: number; sports: number[] })[];
}

/** Flows by the namespace they are sent from, each try given a source port unique to its address. */
function groupBySource(plan: LabPlan, flows: readonly ProbeFlow[]): SourceGroup[] {
  const groups = new Map<string, SourceGroup>();
  const cursors = new Map<string, { traced: number; untraced: number }>();
  flows.forEach((flow, index) => {
    const ns = sourceNamespace(plan, flow.src);
    const cursor = cursors.get(flow.src) ?? { traced: TRACED_PORTS.first, untraced: UNTRACED_PORTS.first };
    cursors.set(flow.src, cursor);
    const traced = Math.min(flow.traced, flow.tries);
    const sports: number[] = [];
    for (let i = 0; i < flow.tries; i++) sports.push(i < traced ? cursor.traced++ : cursor.untraced++);
    if (cursor.traced > TRACED_PORTS.last + 1 || cursor.untraced > UNTRACED_PORTS.last + 1) {
      throw new Error(`probe: too many tries from ${flow.src} for one run (at most ${TRACED_PORTS.last - TRACED_PORTS.first + 1} traced and ${UNTRACED_PORTS.last - UNTRACED_PORTS.first + 1} untraced)`);
    }
    const group = groups.get(ns) ?? { ns, flows: [] };
    group.flows.push({ ...flow, index, sports });
    groups.set(ns, group);
  });
  return [...groups.values()];
}

/** Runs one prober; `ready` resolves once the monitors have seen its canary. */
function runProber(ns: string, job: ProberJob, ready: () => Promise<void>): Promise<[number, number, number, TryOutcome][]> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', PROBER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let result: [number, number, number, TryOutcome][] | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.stdout.on('data', (b: Buffer) => {
      buffered += b.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const message = JSON.parse(line) as { canary?: true; tries?: [number, number, number, TryOutcome][]; error?: string };
        if (message.canary) ready().then(() => child.stdin.write('go\n'), (e: Error) => child.kill() && reject(e));
        if (message.tries) result = message.tries;
        if (message.error) stderr += message.error;
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (result !== undefined) resolve(result);
      else reject(new KpsimError('KPSIM_ERR_LAB_COMMAND', `the prober in ${ns} exited (${code}): ${stderr.trim().split('\n').slice(-3).join('; ')}`));
    });
    child.stdin.write(`${JSON.stringify(job)}\n`);
  });
}

/** Until both monitors have printed the canary (from `src`, port `sport`), at most 20 s. */
async function monitorsHeard(monitors: readonly Monitor[], src: string, sport: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  const seen = (m: Monitor): boolean => m.output().includes(`sport ${sport} `) || m.output().includes(`sport=${sport} `);
  while (!monitors.every(seen)) {
    if (Date.now() > deadline) throw new KpsimError('KPSIM_ERR_LAB_COMMAND', `the kernel's monitors (nft monitor trace, conntrack -E) did not report the canary from ${src} port ${sport} within 20 s`);
    await sleep(20);
  }
}

/** Until the monitors have printed nothing new for a while: the kernel's events arrive after the packets. */
async function quiet(monitors: readonly Monitor[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const size = monitors.reduce((n, m) => n + m.output().length, 0);
    if (size !== last) {
      last = size;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 300) {
      return;
    }
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
