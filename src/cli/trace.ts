/**
 * `kpsim trace`: walk one packet (or a file of flows) through a node's rules and say every rule
 * it crosses, the verdict, the endpoints it can reach with their probabilities, and whether it
 * is masqueraded. The rules come from manifests (-f, compiled for --mode) or from iptables-save
 * dumps (--iptables-save, e.g. from a real node).
 */
import type { Command } from 'commander';
import { KpsimError } from '../errors.js';
import { readInputFile } from '../manifest/load.js';
import { DUMP_READERS, RULES_MODES, defaultRulesMode, modeDriver, parseRulesMode } from '../node/modes.js';
import type { NodeTracer } from '../node/trace-node.js';
import { wantsLiveSource } from '../source/kubeconfig.js';
import { formatTrace } from '../trace/format.js';
import { formatTraceBranches } from '../trace/format-branches.js';
import { PLAIN_STYLE, type TextStyle } from '../trace/text-style.js';
import type { Packet, TraceOptions, TraceProtocol, TraceResult } from '../trace/types.js';
import { ClusterView } from '../cluster/cluster-view.js';
import { type ClusterTraceResult, traceCluster } from '../cluster/cluster-trace.js';
import { formatClusterTrace } from './trace-cluster-format.js';
import { normalizeIP } from '../util/ip.js';
import {
  type ClusterOptions,
  type LoadedCluster,
  EXIT_INPUT,
  action,
  addClusterOptions,
  collect,
  loadClusterFromOptions,
  loadClusterWithOverrides,
  parseChoiceFlag,
  printWarnings,
  parseIPFlag,
  parseIntegerFlag,
  parsePortFlag,
  usageError,
} from './common.js';
import { summaryOf } from './command-table.js';
import { styleFor } from './colour.js';

interface TraceCommandOptions extends ClusterOptions {
  mode?: string;
  proto?: string;
  src?: string;
  dst?: string;
  dport?: string;
  sport?: string;
  json?: boolean;
  verbose?: boolean;
  flows?: string;
  iptablesSave?: string[];
  seed?: string;
  sampleOnly?: boolean;
  fromNode?: boolean;
  scheduler?: string;
  semantics?: string;
  nfacct?: boolean;
  verify?: boolean;
  tries?: string;
  cluster?: boolean;
  via?: string[];
}

/** `--verify` found the kernel disagreeing with kpsim: the command ran, the answer is "no". */
const EXIT_DISAGREE = 3;

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
const TRACE_MODES = RULES_MODES;

export function registerTrace(program: Command): void {
  const cmd = program
    .command('trace')
    .description(summaryOf('trace'));
  addClusterOptions(cmd, { required: false })
    .option('--iptables-save <file>', 'trace through an iptables-save or ip6tables-save dump instead of manifests (repeatable: one per family)', collect)
    .option('--nft-ruleset <file>', 'trace through an `nft list ruleset` dump instead of manifests (repeatable)', collect)
    .option('--mode <mode>', `rules to trace through with -f: ${TRACE_MODES.join(' or ')} (default: the config's mode, else iptables)`)
    .option('--proto <proto>', 'tcp, udp or sctp', 'tcp')
    .option('--src <ip>', 'source address')
    .option('--dst <ip>', 'destination address')
    .option('--dport <port>', 'destination port')
    .option('--sport <port>', 'source port (unknown by default: --sport matches are assumed)')
    .option('--flows <file>', 'a JSON array of {proto, src, dst, dport}: one JSON line per flow')
    .option('--seed <n>', 'also walk once with this random seed and report that concrete outcome as "sample"')
    .option('--sample-only', 'walk only the outcome drawn with --seed, not every outcome (needs --seed)')
    .option('--from-node', 'the packet is sent by the node itself (nat OUTPUT); default: when --src is a node address')
    .option('--scheduler <name>', 'ipvs: scheduler (default: the config\'s ipvs.scheduler, else rr)')
    .option('--semantics <kind>', 'kernel (default), or kube-proxy-test: reproduce kube-proxy\'s own unit-test tracer')
    .option('--no-nfacct', 'compile without -m nfacct matches')
    .option('--verify', 'also send the flow through the node\'s rules in a real kernel (a kpsim lab, root) and print the kernel\'s answer beside kpsim\'s: the DNAT (conntrack), masquerade, the rule path (nft monitor trace), the first difference; --json adds a "kernel" field')
    .option('--tries <n>', 'with --verify: connections to send (default 1)')
    .option('--cluster', 'across the cluster: the entry nodes and their shares, each one\'s trace, the deliveries (endpoint, its node, whether the packet crossed nodes, the source the pod sees) and the reply path')
    .option('--via <node>', 'with --cluster: the node the packet enters at (repeatable; equal shares), for a route kpsim cannot know', collect)
    .option('--json', 'print the result as JSON')
    .option('--verbose', 'print the full walk instead: every hop in walk order, each branch\'s filter and POSTROUTING hops again')
    .addHelpText('after', '\nWithout --json: the hops every path shares, then one branch per outcome (its chance, its own\nhops), the later hooks once when every branch took them alike, and the verdict as a table.\nColoured on a terminal; not when piped, nor with NO_COLOR set.')
    .action(action(async (opts: TraceCommandOptions) => {
      const exit = await runTrace(opts, (line) => process.stdout.write(line), styleFor(process.stdout, process.env));
      if (exit !== 0) process.exitCode = exit;
    }));
}

/**
 * Runs the command; returns the exit code (1 when a flow of --flows was bad). `style` colours the
 * human output (the caller knows whether it goes to a terminal).
 */
export async function runTrace(opts: TraceCommandOptions, write: (text: string) => void, style: TextStyle = PLAIN_STYLE): Promise<number> {
  const traceOptions = readTraceOptions(opts);
  const packets = opts.flows === undefined ? [readPacketFlags(opts)] : undefined;
  if (opts.via !== undefined && !opts.cluster) throw usageError('--via', 'needs --cluster');
  // A cluster-wide answer weighs every entry node's outcomes by their chances: one drawn walk has none.
  if (opts.cluster && opts.sampleOnly) throw usageError('--sample-only', 'a cluster-wide trace weighs every outcome on every entry node: use --seed N alone for a drawn sample on each');
  if (opts.cluster && opts.fromNode) throw usageError('--from-node', 'with --cluster the source address says who sends the packet (a node\'s address: that node)');
  if (opts.verify && (packets === undefined || opts.iptablesSave !== undefined || opts.file === undefined)) {
    throw usageError('--verify', 'runs one flow given with --src/--dst/--dport from manifests (-f), not --flows or dumps');
  }
  if (opts.verify && opts.cluster) throw usageError('--verify', 'runs the flow through one node\'s rules in a lab, not --cluster');
  const tries = opts.tries === undefined ? undefined : parseIntegerFlag('--tries', opts.tries, 1, 10_000);
  if (tries !== undefined && !opts.verify) throw usageError('--tries', 'goes with --verify');
  const loaded = opts.verify ? await loadClusterFromOptions(opts) : undefined;
  const tracer: CommandTracer = opts.cluster ? erase(await buildClusterTracer(opts)) : erase(await buildTracer(opts, style, loaded));
  if (packets) {
    const result = tracer.trace(packets[0]!, traceOptions);
    if (loaded === undefined) {
      write(opts.json ? `${JSON.stringify(result)}\n` : `${tracer.format(result, packets[0]!)}\n`);
      return 0;
    }
    const { verifyPacket, formatKernelVerification } = await import('../lab/verify-flow.js');
    const { parseLabMode } = await import('../lab/kernel-modes.js');
    const mode = parseLabMode(opts.mode ?? defaultRulesMode(loaded.cluster.config), '--mode');
    const kernel = await verifyPacket(loaded, packets[0]!, { mode, ...(opts.fromNode ? { fromNode: true } : {}), ...(tries !== undefined ? { tries } : {}), lab: { files: opts.file ?? [] } });
    // kpsim's side as trace prints it (by outcome, or the full walk with --verbose), then the kernel's.
    write(opts.json ? `${JSON.stringify({ ...result, kernel })}\n` : `${tracer.format(result, packets[0]!)}\n${formatKernelVerification(kernel)}`);
    return kernel.agrees ? 0 : EXIT_DISAGREE;
  }
  const flows = await readFlows(opts.flows!);
  let exit = 0;
  for (const flow of flows) {
    try {
      write(`${JSON.stringify({ flow, ...tracer.trace(flowToPacket(flow), traceOptions) })}\n`);
    } catch (e) {
      if (!(e instanceof KpsimError)) throw e;
      write(`${JSON.stringify({ flow, error: e.toJSON() })}\n`);
      exit = EXIT_INPUT;
    }
  }
  return exit;
}

function readTraceOptions(opts: TraceCommandOptions): TraceOptions {
  const semantics = opts.semantics === undefined ? undefined : parseChoiceFlag('--semantics', opts.semantics, ['kernel', 'kube-proxy-test'] as const);
  if (opts.sampleOnly && opts.seed === undefined) {
    throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', '--sample-only walks the one outcome drawn with --seed N: give --seed too');
  }
  return {
    ...(opts.seed !== undefined ? { seed: parseIntegerFlag('--seed', opts.seed, 0) } : {}),
    ...(opts.sampleOnly ? { sampleOnly: true } : {}),
    ...(opts.fromNode ? { fromNode: true } : {}),
    ...(semantics !== undefined ? { semantics } : {}),
  };
}

function readPacketFlags(opts: TraceCommandOptions): Packet {
  for (const [flag, value] of [['--src', opts.src], ['--dst', opts.dst], ['--dport', opts.dport]] as const) {
    if (value === undefined) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', `${flag} is required (or give --flows FILE)`);
  }
  return {
    proto: parseChoiceFlag('--proto', (opts.proto ?? 'tcp').toLowerCase(), PROTOCOLS),
    src: parseIPFlag('--src', opts.src!),
    dst: parseIPFlag('--dst', opts.dst!),
    dport: parsePortFlag('--dport', opts.dport!),
    ...(opts.sport !== undefined ? { sport: parsePortFlag('--sport', opts.sport) } : {}),
  };
}

/** A tracer with its human format: one node's, or the cluster's (--cluster). */
interface CommandTracer<R extends object = object> {
  trace(packet: Packet, opts: TraceOptions): R;
  /** The human text; `packet` is the one traced (one node's text names it in its first line). */
  format(result: R, packet: Packet): string;
}

/** One shape for either tracer: each formats what it traced itself. */
function erase<R extends object>(tracer: CommandTracer<R>): CommandTracer {
  return { trace: (packet, opts) => tracer.trace(packet, opts), format: (result, packet) => tracer.format(result as R, packet) };
}

async function buildClusterTracer(opts: TraceCommandOptions): Promise<CommandTracer<ClusterTraceResult>> {
  for (const reader of DUMP_READERS) {
    if (dumpFilesOf(opts, reader.flag).length > 0) throw usageError(reader.flag, '--cluster traces through manifests (-f), not a node\'s dump');
  }
  if (opts.file === undefined && !wantsLiveSource(opts)) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', '--cluster needs a cluster: -f PATH... (manifests), or a live cluster with --kubeconfig FILE, --context NAME or --server URL');
  if (opts.node !== undefined || opts.nodeIp !== undefined) throw usageError(opts.node !== undefined ? '--node' : '--node-ip', 'a cluster-wide trace takes every node as it is: name entry nodes with --via');
  const cluster = await loadClusterWithOverrides(opts);
  if (!opts.quiet) printWarnings(cluster.warnings);
  const mode = opts.mode === undefined ? defaultRulesMode(cluster.config) : parseRulesMode(opts.mode, '--mode');
  if (opts.scheduler !== undefined && !modeDriver(mode).options.includes('scheduler')) throw usageError('--scheduler', `does not apply to ${mode} mode`);
  const view = new ClusterView(cluster);
  const compile = { nfacct: opts.nfacct ?? true, ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}) };
  return {
    trace: (packet, traceOptions) => {
      const { fromNode: _fromNode, sampleOnly: _sampleOnly, ...rest } = traceOptions;
      return traceCluster(view, packet, { mode, compile, ...(opts.via !== undefined ? { via: opts.via } : {}), trace: rest });
    },
    format: (result) => formatClusterTrace(result, mode),
  };
}

/** One node's tracer; its text is by outcome, or the full walk with --verbose. */
async function buildTracer(opts: TraceCommandOptions, style: TextStyle, preloaded?: LoadedCluster): Promise<CommandTracer<TraceResult>> {
  const tracer = await buildNodeTracer(opts, preloaded);
  return {
    trace: (packet, traceOptions) => tracer.trace(packet, traceOptions),
    format: (result, packet) => (opts.verbose ? formatTrace(result) : formatTraceBranches(result, { style, packet }).join('\n')),
  };
}

async function buildNodeTracer(opts: TraceCommandOptions, preloaded?: LoadedCluster): Promise<NodeTracer> {
  const dumps = DUMP_READERS.map((reader) => ({ reader, files: dumpFilesOf(opts, reader.flag) })).filter((d) => d.files.length > 0);
  if (dumps.length > 1) throw usageError(dumps[1]!.reader.flag, `give dumps of one mode: ${dumps.map((d) => d.reader.flag).join(' or ')}`);
  const dump = dumps[0];
  if (dump !== undefined) {
    if (opts.file !== undefined) throw usageError(dump.reader.flag, `give either -f manifests or ${dump.reader.flag} dumps, not both`);
    if (opts.mode !== undefined && opts.mode !== dump.reader.mode) {
      throw usageError('--mode', `${opts.mode} needs manifests (-f): ${dump.reader.flag} is a ${dump.reader.mode}-mode dump`);
    }
    const texts = await Promise.all(dump.files.map(async (file) => ({ file, text: await readInputFile(file) })));
    const localAddresses = (opts.nodeIp ?? []).map((ip) => parseIPFlag('--node-ip', ip));
    return dump.reader.tracer(texts, { localAddresses });
  }
  if (opts.file === undefined && !wantsLiveSource(opts)) {
    throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', `give manifests with -f PATH..., a live cluster with --kubeconfig FILE (or --context, --server), or a dump with ${DUMP_READERS.map((r) => `${r.flag} FILE`).join(' or ')}`);
  }
  const loaded = preloaded ?? await loadClusterFromOptions(opts);
  const mode = opts.mode === undefined ? defaultRulesMode(loaded.cluster.config) : parseRulesMode(opts.mode, '--mode');
  const driver = modeDriver(mode);
  if (opts.scheduler !== undefined && !driver.options.includes('scheduler')) throw usageError('--scheduler', `does not apply to ${mode} mode`);
  return driver.tracer(driver.compile(loaded.node, loaded.states, {
    nfacct: opts.nfacct ?? true,
    ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}),
  }));
}

/** The files given with a dump flag (--iptables-save FILE, repeatable). */
function dumpFilesOf(opts: TraceCommandOptions, flag: string): string[] {
  const key = flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof TraceCommandOptions;
  const value = opts[key];
  return Array.isArray(value) ? value : [];
}

interface Flow {
  proto?: unknown;
  src?: unknown;
  dst?: unknown;
  dport?: unknown;
  sport?: unknown;
}

async function readFlows(file: string): Promise<Flow[]> {
  let value: unknown;
  try {
    value = JSON.parse(await readInputFile(file));
  } catch (e) {
    if (e instanceof KpsimError) throw e;
    throw new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', `not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!Array.isArray(value)) throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', 'must be a JSON array of {proto, src, dst, dport}', { file });
  return value as Flow[];
}

/** A flow from --flows as a packet; a bad field is a KPSIM_ERR_TRACE_BAD_PACKET naming it. */
function flowToPacket(flow: Flow): Packet {
  const bad = (field: string, detail: string): KpsimError => new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', detail, { path: field });
  if (typeof flow !== 'object' || flow === null) throw bad('flow', 'is not an object');
  const proto = String(flow.proto ?? 'tcp').toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(proto)) throw bad('proto', `${JSON.stringify(flow.proto)} is not tcp, udp or sctp`);
  const src = typeof flow.src === 'string' ? normalizeIP(flow.src) : undefined;
  if (src === undefined) throw bad('src', `${JSON.stringify(flow.src)} is not an IP address`);
  const dst = typeof flow.dst === 'string' ? normalizeIP(flow.dst) : undefined;
  if (dst === undefined) throw bad('dst', `${JSON.stringify(flow.dst)} is not an IP address`);
  const dport = Number(flow.dport);
  if (!Number.isInteger(dport) || dport < 1 || dport > 65535) throw bad('dport', `${JSON.stringify(flow.dport)} is not a port`);
  const packet: Packet = { proto: proto as TraceProtocol, src, dst, dport };
  if (flow.sport === undefined) return packet;
  const sport = Number(flow.sport);
  if (!Number.isInteger(sport) || sport < 1 || sport > 65535) throw bad('sport', `${JSON.stringify(flow.sport)} is not a port`);
  return { ...packet, sport };
}
