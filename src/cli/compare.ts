/**
 * `kpsim compare`: the same load direct to one backend pod and through the userspace proxy with
 * each scheduler (real bytes on loopback), beside iptables and IPVS mode simulated on one stream
 * of new connections: throughput, added latency, how evenly the endpoints are loaded, and what
 * each new-connection decision costs.
 */
import type { Command } from 'commander';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { COMPARE_DEFAULTS, runCompare } from '../load/compare.js';
import { formatCompareReport } from '../load/compare-format.js';
import { parseTargetFlag } from '../load/target.js';
import { LAB_MODES, type LabMode, parseLabMode } from '../lab/kernel-modes.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseIntegerFlag, parseNumberFlag, usageError } from './common.js';
import { summaryOf } from './command-table.js';

interface CompareFlags extends ClusterOptions {
  target?: string;
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
    .option('--target <svc/NAME[:port]>', 'the service port to compare on (default: the TCP service port with the most endpoints)')
    .option('--schedulers <list>', `IPVS schedulers for the proxy and the IPVS rows, comma-separated: ${schedulerNames.join(', ')}`, COMPARE_DEFAULTS.schedulers.join(','))
    .option('--connections <n>', 'concurrent client connections', String(COMPARE_DEFAULTS.connections))
    .option('--duration <seconds>', 'seconds of load per measured row', String(COMPARE_DEFAULTS.durationSeconds))
    .option('--kernel [modes]', 'also send the load through each mode\'s rules in a real kernel (a kpsim lab, root): iptables, nftables, ipvs, comma-separated (default: all; those this machine cannot run are left out with a note)')
    .option('--json', 'print the report as JSON (schema kpsim.compare/v1)');
  addClusterOptions(cmd);
  cmd.action(action(async (flags: CompareFlags) => {
    const target = flags.target !== undefined ? parseTargetFlag(flags.target) : undefined;
    const schedulers = parseSchedulers(flags.schedulers);
    const connections = parseIntegerFlag('--connections', flags.connections, 1, 10_000);
    const durationSeconds = parseNumberFlag('--duration', flags.duration, 0.1);
    const kernelModes = flags.kernel === undefined ? undefined : parseKernelModes(flags.kernel);
    const loaded = await loadClusterFromOptions(flags);
    const kernelNotes: string[] = [];
    const measured = kernelModes === undefined ? undefined
      : (await import('../lab/kernel-load.js')).kernelCompareRows(loaded, kernelModes, kernelNotes, { files: flags.file ?? [] });
    const report = await runCompare(loaded, {
      ...(measured !== undefined ? { measured } : {}),
      ...(target !== undefined ? { target } : {}),
      schedulers,
      connections,
      durationSeconds,
      onProgress: (line) => process.stderr.write(`compare ${line}\n`),
    });
    report.notes.push(...kernelNotes);
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCompareReport(report));
  }));
}

/** --kernel (every mode) or --kernel iptables,nftables. */
function parseKernelModes(value: string | true): LabMode[] {
  if (value === true) return [...LAB_MODES];
  const modes = value.split(',').map((m) => m.trim()).filter((m) => m !== '').map((m) => parseLabMode(m, '--kernel'));
  if (modes.length === 0) throw usageError('--kernel', `give modes, e.g. iptables,nftables (or --kernel alone for ${LAB_MODES.join(', ')})`);
  return [...new Set(modes)];
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
