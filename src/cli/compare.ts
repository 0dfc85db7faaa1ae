/**
 * `kpsim compare`: the same load direct to one backend pod and through the userspace proxy with
 * each scheduler (real bytes on loopback), beside the compiled modes (iptables, IPVS, nftables) simulated on one stream (and, with --kernel, their rules in a real kernel: a kpsim lab)
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
import { LAB_MODES, type LabMode, parseLabMode } from '../lab/kernel-modes.js';
import { summaryOf } from './command-table.js';

interface CompareFlags extends ClusterOptions, NodeRunFlags {
  target?: string;
  proto: string;
  rate?: string;
  schedulers: string;
  connections: string;
  duration: string;
  kernel?: string | true;
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
    .option('--kernel [modes]', 'also send the load through each mode\'s rules in a real kernel (a kpsim lab, root): iptables, nftables, ipvs, comma-separated (default: all; those this machine cannot run are left out with a note)')
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
    const kernelModes = flags.kernel === undefined ? undefined : parseKernelModes(flags.kernel);
    const loaded = await loadClusterFromOptions(flags);
    const node = parseNodeRunFlags(flags, loaded);
    const kernelNotes: string[] = [];
    const kernel = kernelModes === undefined ? undefined : await import('../lab/kernel-load.js');
    if (kernel !== undefined && protocol === 'UDP') kernelNotes.push(`kernel rows left out: ${kernel.udpRefusal}`);
    const measured = kernel === undefined || kernelModes === undefined || protocol === 'UDP' ? undefined
      : kernel.kernelCompareRows(loaded, kernelModes, kernelNotes, { files: flags.file ?? [] });
    const report = await runCompare(loaded, {
      ...(measured !== undefined ? { measured } : {}),
      ...(target !== undefined ? { target } : {}),
      protocol,
      ...(protocol === 'UDP' ? { rate } : {}),
      ...node,
      schedulers,
      connections,
      durationSeconds,
      onProgress: (line) => process.stderr.write(`compare ${line}\n`),
    });
    report.notes.push(...kernelNotes);
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

/** --kernel (every mode) or --kernel iptables,nftables. */
function parseKernelModes(value: string | true): LabMode[] {
  if (value === true) return [...LAB_MODES];
  const modes = value.split(',').map((m) => m.trim()).filter((m) => m !== '').map((m) => parseLabMode(m, '--kernel'));
  if (modes.length === 0) throw usageError('--kernel', `give modes, e.g. iptables,nftables (or --kernel alone for ${LAB_MODES.join(', ')})`);
  return [...new Set(modes)];
}
