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
 * first sends a canary datagram and waits until the trace monitor has seen it (the packets of
 * that source reach the node and are heard), and traces only while no other prober does.
 *
 * conntrack's table is read once, after the last try; what the kernel removed from it before
 * then is read from its destroy events, heard while the tries run. It does remove closed entries
 * of tries, timeouts aside: masquerade is fully-random, so a try's masqueraded source port is any
 * port, and when a later try from the node itself uses that port to the same endpoint, its NAT
 * finds the reply tuple taken by the closed entry and evicts it (Linux 6.5+, nf_nat_used_tuple_harder:
 * a closing TCP entry with source NAT, in the NAT's last attempts; a DNAT to one address and port
 * has only one). About one try in 7 500 of large-cluster's, one probe in three.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { KpsimError } from '../errors.js';
import { type Family, ipFamily } from '../util/ip.js';
import { forEachLimited, inNamespace, type Monitor, run, startMonitor } from './exec.js';
import { type ConntrackEntry, type FlowKey, type L4, TRACE_TABLE, type TracedPacket, flowKeyText, parseConntrack, parseConntrackDestroyed, parseNftTrace, parseRuleHandles, sourceKeyText } from './kernel-text.js';
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

/**
 * What the sender saw. 'denied': the node's own OUTPUT rules refused to send it (EPERM), which a
 * REJECT and a DROP there both give.
 */
export type TryOutcome = 'connected' | 'refused' | 'timeout' | 'unreachable' | 'denied' | 'sent' | 'busy' | 'error';

export interface ProbeTry {
  readonly flow: number;
  /** Order in which its prober made it (tries of one prober are in this order). */
  readonly order: number;
  readonly sport: number;
  readonly traced: boolean;
  readonly outcome: TryOutcome;
  readonly conntrack?: ConntrackEntry;
  /** Its conntrack entry is what the kernel's destroy event printed: the kernel removed it while the probe ran. */
  readonly evicted?: boolean;
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

/** Source port ranges (canaries: one port per prober). */
const BEACON_PORT = 9800;
const CANARY_PORT = 9900;
/** The node's conntrack timeouts of closed, unanswered and half-open connections, kept long while probing. */
const CONNTRACK_TIMEOUTS = ['tcp_timeout_close', 'tcp_timeout_close_wait', 'tcp_timeout_fin_wait', 'tcp_timeout_last_ack', 'tcp_timeout_syn_sent',
  'tcp_timeout_syn_recv', 'tcp_timeout_time_wait', 'tcp_timeout_unacknowledged', 'tcp_timeout_max_retrans', 'udp_timeout', 'udp_timeout_stream']
  .map((name) => `net.netfilter.nf_conntrack_${name}`);
/** Probers at once: each traces one try at a time, and nft's monitor keeps up with a few such streams. */
const PROBER_CONCURRENCY = 4;
const TRACED_PORTS = { first: 10_000, last: 29_999 };
const UNTRACED_PORTS = { first: 30_000, last: 65_499 };
/**
 * The entry written and removed in the node's table to know that conntrack's destroy monitor has
 * printed everything removed before it (TEST-NET-1 addresses: no lab's, no try's); its source port
 * tells one sentinel from the next.
 */
const SENTINEL = { src: '192.0.2.1', dst: '192.0.2.2', dport: 9 };

/** The table that marks the lab's traced tries. Priority -350: before conntrack and the raw table. */
export function traceTableScript(): string {
  const mark = (l4: L4): string => `${l4} sport ${BEACON_PORT}-${TRACED_PORTS.last}${l4 === 'tcp' ? ' tcp flags & (fin | syn | rst | ack) == syn' : ''} meta nftrace set 1`;
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
 * The prober, run with `node -e` in a source namespace. Reads its job, sends its canary and says
 * {"canary":true}; on "go" (its turn to trace) makes its traced tries one by one, saying
 * {"traced":PORT,"outcome":…} after each and waiting for "go"; says {"tracedAll":true}; on "go"
 * makes the untraced tries and says {"tries":[[flow, order, sport, outcome], …]}.
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
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'EADDRINUSE' ? 'busy' : e.code === 'EPERM' ? 'denied'
        : (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') ? 'unreachable' : e.code === 'ECONNRESET' ? 'connected' : 'error');
    });
  });
}
function udpTry(f, sport) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(f.src.includes(':') ? 'udp6' : 'udp4');
    s.once('error', (e) => { s.close(); resolve(e.code === 'EADDRINUSE' ? 'busy' : 'error'); });
    s.bind({ address: f.src, port: sport, exclusive: true }, () => s.send('kpsim', f.dport, f.dst, (err) => { s.close(); resolve(err ? (err.code === 'EPERM' ? 'denied' : 'error') : 'sent'); }));
  });
}
(async () => {
  const job = JSON.parse((await it.next()).value);
  // The canary again every half second until the answer: one lost on a busy machine is not the end.
  const c = dgram.createSocket(job.canary.src.includes(':') ? 'udp6' : 'udp4');
  await new Promise((r) => c.bind({ address: job.canary.src, port: job.canary.sport }, r));
  const again = () => c.send('kpsim canary', 9, job.canary.dst, () => undefined);
  again();
  const repeat = setInterval(again, 500);
  say({ canary: true });
  await it.next();
  clearInterval(repeat);
  c.close();
  const out = [];
  let order = 0;
  // Traced tries one at a time, only while no other prober traces, and each only once nft's
  // monitor has printed the one before (the orchestrator answers each): nft reads the trace
  // slower than packets come, and what overruns it is lost without a word. Untraced tries go
  // 64 at a time, unless the flow is sequential.
  for (const f of job.flows) {
    const tryOne = f.proto === 'udp' ? udpTry : tcpTry;
    for (const sport of f.sports.slice(0, f.traced)) {
      const outcome = await tryOne(f, sport);
      out.push([f.index, order++, sport, outcome]);
      say({ traced: sport, outcome });
      await it.next();
    }
  }
  say({ tracedAll: true });
  await it.next();
  for (const f of job.flows) {
    const tryOne = f.proto === 'udp' ? udpTry : tcpTry;
    const sports = f.sports.slice(f.traced);
    let next = 0;
    const worker = async () => {
      while (next < sports.length) {
        const sport = sports[next++];
        const n = order++;
        out.push([f.index, n, sport, await tryOne(f, sport)]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(f.sequential ? 1 : 64, sports.length) }, worker));
  }
  say({ tries: out });
  lines.close();
})().catch((e) => { say({ error: String(e && e.stack || e) }); process.exit(1); });
`;

/** Where a source address sends from: the namespace holding it. */
function sourceNamespace(plan: LabPlan, src: string): string {
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
  const heard = new TraceWatcher();
  const trace = startMonitor(inNamespace(node, ['nft', '-a', 'monitor', 'trace']), (line) => heard.line(line));
  heard.monitor = trace;
  // conntrack's record is read once at the end (`conntrack -E` loses events when thousands of
  // connections a second are made, even with a large buffer): until then every entry must stay,
  // so the node keeps closed and unanswered ones for an hour while the probe runs. Those the kernel
  // evicts all the same (see the top) are heard from its destroy events.
  const timeouts = (await run(inNamespace(node, ['sysctl', ...CONNTRACK_TIMEOUTS]))).stdout;
  await run(inNamespace(node, ['sysctl', '-qw', ...CONNTRACK_TIMEOUTS.map((k) => `${k}=3600`)]));
  await beaconHeard(node, heard);
  // Only destroy events are subscribed to (a few per probe), so none are lost, unlike `conntrack -E` of every new entry.
  const destroyed = new SentinelWatcher();
  const destroyMonitor = startMonitor(inNamespace(node, ['conntrack', '-E', '-e', 'DESTROY', '-o', 'extended', '-b', '8388608']), (line) => destroyed.line(line));
  destroyed.monitor = destroyMonitor;
  const collected: { flow: number; order: number; sport: number; outcome: TryOutcome; src: string }[] = [];
  let traceText = '';
  let conntrackText = '';
  let destroyedText = '';
  try {
    await destroyed.heard(node, 1);
    // Sources in different namespaces do not interact: their probers run side by side, one of
    // them tracing at a time.
    const tracing = new Mutex();
    await forEachLimited(groups.map((group, i) => ({ group, canary: CANARY_PORT + i })), PROBER_CONCURRENCY, async ({ group, canary }) => {
      const job: ProberJob = {
        canary: { src: group.flows[0]!.src, sport: canary, dst: canaryDestination(lab.plan, group.ns, ipFamily(group.flows[0]!.src)!) },
        flows: group.flows,
      };
      const tries = await runProber(group.ns, job, {
        ready: async () => {
          await heard.wait(job.canary.sport, 30_000);
          return tracing.acquire();
        },
        traced: async (sport) => {
          await heard.wait(sport, 5000).catch(() => undefined);
          await quiet(trace, 15);
        },
      });
      const byIndex = new Map(group.flows.map((f) => [f.index, f]));
      for (const [flow, order, sport, outcome] of tries) collected.push({ flow, order, sport, outcome, src: byIndex.get(flow)!.src });
    });
    await quiet(trace);
    conntrackText = (await run(inNamespace(node, ['conntrack', '-L', '-o', 'extended']))).stdout;
    await destroyed.heard(node, 2);
  } finally {
    traceText = await trace.stop();
    destroyedText = await destroyMonitor.stop();
    await run(inNamespace(node, ['sysctl', '-qw', ...timeouts.split('\n').filter((l) => l.includes(' = ')).map((l) => l.replace(' = ', '='))]), { allowFailure: true });
    // What the kernel's monitors printed, kept for a person to read when a path looks wrong.
    const keep = process.env['KPSIM_LAB_TRACE_LOG'];
    if (keep) writeFileSync(keep, `${traceText}\n# conntrack -L\n${conntrackText}\n# conntrack -E -e DESTROY\n${destroyedText}`);
    await run(inNamespace(node, ['nft', 'delete', 'table', 'inet', TRACE_TABLE]), { allowFailure: true });
  }
  const entries = new Map(parseConntrack(conntrackText).map((e) => [flowKeyText(e.key), e]));
  const evicted = new Map(parseConntrackDestroyed(destroyedText).map((e) => [flowKeyText(e.key), e]));
  const traces = new Map<string, TracedPacket>();
  for (const packet of parseNftTrace(traceText)) if (packet.key !== undefined) traces.set(sourceKeyText(packet.key), packet);
  const tries: ProbeTry[] = collected.map((t) => {
    const f = flows[t.flow]!;
    const key: FlowKey = { proto: f.proto, src: t.src, sport: t.sport, dst: f.dst, dport: f.dport };
    const listed = entries.get(flowKeyText(key));
    const entry = listed ?? evicted.get(flowKeyText(key));
    const packet = traces.get(sourceKeyText(key));
    return {
      flow: t.flow, order: t.order, sport: t.sport, traced: t.sport <= TRACED_PORTS.last, outcome: t.outcome,
      ...(entry ? { conntrack: entry } : {}), ...(entry !== undefined && listed === undefined ? { evicted: true } : {}), ...(packet ? { trace: packet } : {}),
    };
  });
  return { tries, handles: parseRuleHandles(listing.stdout), kernelRules, ms: performance.now() - started };
}

interface SourceGroup {
  readonly ns: string;
  readonly flows: (ProbeFlow & { index: number; sports: number[] })[];
}

/**
 * Flows by the namespace they are sent from, each try given a source port of its own in the whole
 * probe, whatever its address: the node masquerades many sources to one address and keeps their
 * ports where it can, so two tries with one port from two sources would want the same NAT tuple,
 * and the kernel then drops or remaps one of them.
 */
function groupBySource(plan: LabPlan, flows: readonly ProbeFlow[]): SourceGroup[] {
  const groups = new Map<string, SourceGroup>();
  const cursor = { traced: TRACED_PORTS.first, untraced: UNTRACED_PORTS.first };
  flows.forEach((flow, index) => {
    const ns = sourceNamespace(plan, flow.src);
    const traced = Math.min(flow.traced, flow.tries);
    const sports: number[] = [];
    for (let i = 0; i < flow.tries; i++) sports.push(i < traced ? cursor.traced++ : cursor.untraced++);
    if (cursor.traced > TRACED_PORTS.last + 1 || cursor.untraced > UNTRACED_PORTS.last + 1) {
      throw new Error(`probe: too many tries for one run (at most ${TRACED_PORTS.last - TRACED_PORTS.first + 1} traced and ${UNTRACED_PORTS.last - UNTRACED_PORTS.first + 1} untraced)`);
    }
    const group = groups.get(ns) ?? { ns, flows: [] };
    group.flows.push({ ...flow, index, sports });
    groups.set(ns, group);
  });
  return [...groups.values()];
}

interface ProberHooks {
  /** Resolves once the monitor has heard the canary and the prober may trace, with the function ending its turn. */
  ready(): Promise<() => void>;
  /** Resolves once the monitor has printed a traced try (or has waited long enough). */
  traced(sport: number): Promise<void>;
}

/** Runs one prober through its turns (see PROBER). */
function runProber(ns: string, job: ProberJob, hooks: ProberHooks): Promise<[number, number, number, TryOutcome][]> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', PROBER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let result: [number, number, number, TryOutcome][] | undefined;
    let endTurn = (): void => undefined;
    const go = (): boolean => child.stdin.write('go\n');
    const fail = (e: Error): void => {
      child.kill();
      reject(e);
    };
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.stdout.on('data', (b: Buffer) => {
      buffered += b.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const message = JSON.parse(line) as { canary?: true; traced?: number; outcome?: TryOutcome; tracedAll?: true; tries?: [number, number, number, TryOutcome][]; error?: string };
        if (message.canary) {
          hooks.ready().then((release) => {
            endTurn = release;
            go();
          }, fail);
        }
        if (message.traced !== undefined) {
          // A try that never left (its port was taken, a socket error) has nothing to wait for.
          if (message.outcome === 'busy' || message.outcome === 'error') go();
          else hooks.traced(message.traced).then(go, fail);
        }
        if (message.tracedAll) {
          endTurn();
          go();
        }
        if (message.tries) result = message.tries;
        if (message.error) stderr += message.error;
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      endTurn();
      if (result !== undefined) resolve(result);
      else reject(new KpsimError('KPSIM_ERR_LAB_COMMAND', `the prober in ${ns} exited (${code}): ${stderr.trim().split('\n').slice(-3).join('; ')}`));
    });
    child.stdin.write(`${JSON.stringify(job)}\n`);
  });
}

/** Which source ports the trace monitor has printed a packet of (its own table's packet lines), as they come. */
class TraceWatcher {
  readonly #sports = new Set<number>();
  monitor: Monitor | undefined;

  line(line: string): void {
    if (!line.includes(` ${TRACE_TABLE} `) || !line.includes(' packet: ')) return;
    const m = / sport (\d+) /.exec(line);
    if (m) this.#sports.add(Number(m[1]));
  }

  has(sport: number): boolean {
    return this.#sports.has(sport);
  }

  /** Until a packet from `sport` is printed; KPSIM_ERR_LAB_COMMAND after `ms`, or if the monitor exits. */
  async wait(sport: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.has(sport)) {
      const child = this.monitor!.child;
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        const why = this.monitor!.errors().trim();
        throw new KpsimError('KPSIM_ERR_LAB_COMMAND', `nft's trace monitor did not report a packet from port ${sport}${child.exitCode !== null || child.signalCode !== null ? ': it exited' : ` within ${ms / 1000} s`}${why === '' ? '' : `: ${why.slice(0, 300)}`}`);
      }
      await sleep(5);
    }
  }
}

/** What conntrack's destroy monitor has printed of the sentinel entries. */
class SentinelWatcher {
  readonly #sports = new Set<number>();
  monitor: Monitor | undefined;

  line(line: string): void {
    if (!line.includes(`src=${SENTINEL.src} dst=${SENTINEL.dst} `)) return;
    const m = / sport=(\d+) /.exec(line);
    if (m) this.#sports.add(Number(m[1]));
  }

  /**
   * Writes and removes sentinel `sport`, then waits (at most 10 s) until the monitor has printed
   * its removal: netlink hands a listener its events in order, so every entry removed before is
   * printed by then. At the start, it tells that the monitor listens. A monitor that does not
   * answer is waited for no longer: the tries whose entries it missed are judged lost records.
   */
  async heard(node: string, sport: number): Promise<boolean> {
    const tuple = ['-p', 'tcp', '-s', SENTINEL.src, '-d', SENTINEL.dst, '--sport', String(sport), '--dport', String(SENTINEL.dport)];
    await run(inNamespace(node, ['conntrack', '-I', ...tuple, '--state', 'CLOSE', '-t', '60']), { allowFailure: true });
    await run(inNamespace(node, ['conntrack', '-D', ...tuple]), { allowFailure: true });
    const deadline = Date.now() + 10_000;
    while (!this.#sports.has(sport)) {
      const child = this.monitor!.child;
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) return false;
      await sleep(5);
    }
    return true;
  }
}

/**
 * Until nft's monitor has subscribed: it first reads the whole ruleset (seconds, for thousands of
 * services on a busy machine), and hears nothing before. A beacon in the node sends a traced
 * datagram every 100 ms until one is printed (at most 120 s).
 */
async function beaconHeard(node: string, heard: TraceWatcher): Promise<void> {
  const beacon = startMonitor(inNamespace(node, [process.execPath, '-e',
    `const s = require('node:dgram').createSocket('udp4'); s.bind(${BEACON_PORT}, '127.0.0.1', () => setInterval(() => s.send('kpsim beacon', 9, '127.0.0.1'), 100)); setTimeout(() => process.exit(0), 120000);`]));
  try {
    await heard.wait(BEACON_PORT, 120_000);
  } finally {
    await beacon.stop();
  }
}

/**
 * Until the monitor has printed nothing new for `ms`: the kernel's events arrive after the
 * packets, and nft prints them slower than they come (a couple of thousand a second on a busy
 * machine: each is looked up in its copy of the ruleset); what it has not read when its socket
 * buffer fills is lost.
 */
async function quiet(monitor: Monitor, ms = 300): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const size = monitor.bytes();
    if (size !== last) {
      last = size;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= ms) {
      return;
    }
    await sleep(Math.min(50, ms / 3));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One holder at a time; `acquire` resolves with the function that lets the next one in. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();

  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => { release = resolve; });
    const turn = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return turn;
  }
}
