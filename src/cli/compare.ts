/**
 * `kpsim compare`: the same load direct to one backend pod and through the userspace proxy with
 * each scheduler (real bytes on loopback), beside the compiled modes (iptables, IPVS, nftables) simulated on one stream
 * of new connections: throughput, added latency, how evenly the endpoints are loaded, and what
 * each new-connection decision costs.
 */
import type { Command } from 'commander';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { COMPARE_DEFAULTS, runCompare } from '../load/compare.js';
import { formatCompareReport } from '../load/compare-format.js';
import { parseTargetFlag } from '../load/target.js';
import {
  type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, parseIntegerFlag, parseNumberFlag, usageError,
} from './common.js';
import { type NodeRunFlags, addNodeRunOptions, parseNodeRunFlags } from './node-flags.js';
import { summaryOf } from './command-table.js';

interface CompareFlags extends ClusterOptions, NodeRunFlags {
  target?: string;
  proto: string;
  rate?: string;
  schedulers: string;
  connections: string;
  duration: string;
  json?: boolean;
}

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare')
    .description(summaryOf('compare'))
    .option('--target <svc/NAME[:port]>', 'the service port to compare on (default: the service port of --proto with the most endpoints)')
    .option('--proto <tcp|udp>', 'the service port\'s protocol: tcp (HTTP, keep-alive) or udp (request/response datagrams)', 'tcp')
    .option('--rate <n>', 'UDP: datagrams per second in total for each measured row', '1000')
    .option('--schedulers <list>', `IPVS schedulers for the proxy and the IPVS rows, comma-separated: ${schedulerNames.join(', ')}`, COMPARE_DEFAULTS.schedulers.join(','))
    .option('--connections <n>', 'concurrent client connections', String(COMPARE_DEFAULTS.connections))
    .option('--duration <seconds>', 'seconds of load per measured row', String(COMPARE_DEFAULTS.durationSeconds))
    .option('--json', 'print the report as JSON (schema kpsim.compare/v1)');
  addNodeRunOptions(cmd);
  addClusterOptions(cmd);
  cmd.action(action(async (flags: CompareFlags) => {
    const target = flags.target !== undefined ? parseTargetFlag(flags.target) : undefined;
    const schedulers = parseSchedulers(flags.schedulers);
    const connections = parseIntegerFlag('--connections', flags.connections, 1, 10_000);
    const durationSeconds = parseNumberFlag('--duration', flags.duration, 0.1);
    const protocol = parseChoiceFlag('--proto', flags.proto.toLowerCase(), ['tcp', 'udp'] as const) === 'udp' ? 'UDP' : 'TCP';
    const rate = parseIntegerFlag('--rate', flags.rate ?? '1000', 1, 1_000_000);
    const loaded = await loadClusterFromOptions(flags);
    const node = parseNodeRunFlags(flags, loaded);
    const report = await runCompare(loaded, {
      ...(target !== undefined ? { target } : {}),
      protocol,
      ...(protocol === 'UDP' ? { rate } : {}),
      ...node,
      schedulers,
      connections,
      durationSeconds,
      onProgress: (line) => process.stderr.write(`compare ${line}\n`),
    });
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCompareReport(report));
  }));
}

/** "rr,lc" → ["rr", "lc"]: each a scheduler ipvsadm knows, none twice. */
export function parseSchedulers(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw usageError('--schedulers', 'give at least one scheduler, e.g. rr,lc');
  for (const name of names) {
    if (!isSchedulerName(name)) throw usageError('--schedulers', `${JSON.stringify(name)} is not one of ${schedulerNames.join(', ')}`);
  }
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated !== undefined) throw usageError('--schedulers', `${repeated} is named twice`);
  return names;
}
