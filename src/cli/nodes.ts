/**
 * `kpsim nodes`: every node's view of the cluster in one table: what kube-proxy writes there in
 * each mode (rules, virtual servers), its endpoints, the services whose Local traffic policy
 * drops traffic there, and its answers to the load balancers' health checks. The nodes are
 * shared out over worker threads (one per core by default), each loading the cluster and
 * sharing the node-independent work across its own nodes (src/cluster/).
 */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { KpsimError } from '../errors.js';
import type { ModeSummaryLines, NodeSummary } from '../cluster/node-summary.js';
import { startModuleWorker } from '../proxy/module-worker.js';
import { formatTable } from '../load/table.js';
import type { Warning } from '../model/types.js';
import type { ModeCompileOptions, ModeSize, RulesMode } from '../node/mode-driver.js';
import { RULES_MODES, modeDriver, parseRulesMode } from '../node/modes.js';
import { wantsLiveSource } from '../source/kubeconfig.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterObjects, parseIntegerFlag, printWarnings, usageError } from './common.js';
import { summaryOf } from './command-table.js';
import { type NodesJob, type NodesMessage, runNodesJob } from './nodes-job.js';

interface NodesCommandOptions extends ClusterOptions {
  mode?: string;
  workers?: string;
  scheduler?: string;
  nfacct?: boolean;
  json?: boolean;
}

export function registerNodes(program: Command): void {
  const cmd = program.command('nodes').description(summaryOf('nodes'));
  addClusterOptions(cmd)
    .option('--mode <modes>', `the modes to count, comma-separated (default: ${RULES_MODES.join(',')})`)
    .option('--workers <n>', 'worker threads (default: one per core; 1 works in this thread)')
    .option('--scheduler <name>', 'ipvs: scheduler (default: the config\'s ipvs.scheduler, else rr)')
    .option('--no-nfacct', 'iptables: count without the -m nfacct matches')
    .option('--json', 'print {nodes: [...]} as JSON')
    .action(action(async (opts: NodesCommandOptions) => {
      if (opts.node !== undefined || opts.nodeIp !== undefined) throw usageError(opts.node !== undefined ? '--node' : '--node-ip', 'kpsim nodes takes every Node of the input as it is');
      const modes = opts.mode === undefined ? RULES_MODES : [...new Set(opts.mode.split(',').map((m) => parseRulesMode(m.trim(), '--mode')))];
      if (opts.scheduler !== undefined && !modes.some((m) => modeDriver(m).options.includes('scheduler'))) throw usageError('--scheduler', `does not apply to ${modes.join(', ')}`);
      const workers = opts.workers === undefined ? availableParallelism() : parseIntegerFlag('--workers', opts.workers, 1, 256);
      const compile: ModeCompileOptions = {
        ...(opts.nfacct === false ? { nfacct: false } : {}),
        ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}),
      };
      const cluster = clusterOptionsOf(opts);
      // Standard input can be read once, and a live cluster is better asked once: read here, the threads share the objects.
      const readOnce = wantsLiveSource(opts) || (opts.file ?? []).includes('-');
      const read = readOnce ? await loadClusterObjects(opts) : undefined;
      const result = await summarizeNodes({ cluster, modes, compile, ...(read !== undefined ? { read: { objects: read.objects, warnings: read.warnings } } : {}) }, workers);
      if (!opts.quiet) printWarnings(result.warnings);
      process.stdout.write(opts.json ? `${JSON.stringify({ nodes: result.summaries })}\n` : formatNodes(result.summaries, modes));
    }));
}

/** The cluster options as plain data (commander's option object carries more). */
function clusterOptionsOf(opts: NodesCommandOptions): ClusterOptions {
  const keys = ['file', 'config', 'allocate', 'nodes', 'serviceClusterIpRange', 'serviceNodePortRange', 'clusterCidr', 'masqueradeAll', 'kubeconfig', 'context', 'server'] as const;
  const out: Record<string, unknown> = {};
  for (const key of keys) if (opts[key] !== undefined) out[key] = opts[key];
  return out as ClusterOptions;
}

export interface NodesResult {
  readonly summaries: readonly NodeSummary[];
  readonly warnings: readonly Warning[];
}

/** Every node's summary, in input order, from `workers` threads (1: this one). */
export async function summarizeNodes(job: Omit<NodesJob, 'share'>, workers: number): Promise<NodesResult> {
  const summaries: NodeSummary[] = [];
  let warnings: readonly Warning[] = [];
  let nodeCount = 0;
  const receive = (message: NodesMessage): void => {
    if (message.type === 'cluster') {
      warnings = message.warnings;
      nodeCount = message.nodes.length;
    } else if (message.type === 'summaries') {
      for (const { index, summary } of message.items) summaries[index] = summary;
    } else if (message.type === 'error') {
      throw message.code !== undefined ? new KpsimError(message.code, message.message) : new Error(message.message + (message.stack ? `\n${message.stack}` : ''));
    }
  };
  if (workers === 1) {
    const messages: NodesMessage[] = [];
    await runNodesJob({ ...job, share: { index: 0, count: 1 } }, (m) => messages.push(m));
    for (const m of messages) receive(m);
  } else {
    await Promise.all(Array.from({ length: workers }, (_, index) => runWorker({ ...job, share: { index, count: workers } }, receive)));
  }
  if (summaries.length !== nodeCount || summaries.some((s) => s === undefined)) throw new Error(`kpsim nodes: ${summaries.filter(Boolean).length} of ${nodeCount} nodes summarised`);
  return { summaries, warnings };
}

function runWorker(job: NodesJob, receive: (message: NodesMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = startModuleWorker(import.meta.url, 'nodes-worker', job);
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      fn();
    };
    worker.on('message', (message: NodesMessage) => {
      try {
        receive(message);
        if (message.type === 'done') settle(resolve);
      } catch (e) {
        settle(() => reject(e));
      }
    });
    worker.on('error', (err) => settle(() => reject(err)));
    worker.on('exit', (code) => settle(() => reject(new Error(`a kpsim nodes worker exited with code ${code} before it finished`))));
  });
}

function formatNodes(summaries: readonly NodeSummary[], modes: readonly RulesMode[]): string {
  if (summaries.length === 0) return 'no Node objects in the input: kpsim nodes lists the cluster\'s Nodes\n';
  const units = modes.map((mode) => {
    const first = summaries[0]!.modes[mode];
    return first !== undefined && 'unit' in first ? `${mode} ${first.unit}` : mode;
  });
  const columns = [
    { header: 'NODE' },
    { header: 'ZONE' },
    { header: 'ADDRESSES' },
    ...units.map((u) => ({ header: u.toUpperCase(), align: 'right' as const })),
    { header: 'LOCAL ENDPOINTS', align: 'right' as const },
    { header: 'NO LOCAL ENDPOINTS eTP/iTP', align: 'right' as const },
    { header: 'HEALTH CHECKS 200/503', align: 'right' as const },
  ];
  const rows = summaries.map((s) => [
    s.node,
    s.zone ?? '',
    s.addresses.join(','),
    ...modes.map((mode) => modeCell(s.modes[mode])),
    String(s.localEndpoints),
    `${s.withoutLocalEndpoints.externalTrafficPolicyLocal}/${s.withoutLocalEndpoints.internalTrafficPolicyLocal}`,
    `${s.healthChecks.ok}/${s.healthChecks.unavailable}`,
  ]);
  return `${formatTable(columns, rows)}\n${summaries.length} nodes\n`;
}

function modeCell(size: ModeSize | ModeSummaryLines | undefined): string {
  if (size === undefined) return '';
  if ('count' in size) return String(size.count);
  return size.summary.join('; ');
}
