/**
 * `kpsim lab`: the compiled rules forwarding real traffic in a real kernel (root), in network
 * namespaces kpsim makes and names after itself.
 *
 *   kpsim lab up -f rules/example [--mode iptables] [--id web]   make one and leave it up
 *   kpsim lab status                                            what is up
 *   kpsim lab down [--id web]                                   remove one, or every lab
 *   kpsim lab sync-bench [--services 1000]                      the kernel's sync time per mode
 */
import { type Command, Option } from 'commander';
import { KpsimError } from '../errors.js';
import { LAB_MODES, kernelRelease, parseLabMode } from '../lab/kernel-modes.js';
import { type SyncBenchResult, generatedCluster, runSyncBench } from '../lab/sync-bench.js';
import { type DownReport, labDown, labDownAll, labDownNamed, labStatuses, labUp } from '../lab/lab.js';
import { IFACES, type LabPlan } from '../lab/plan.js';
import { checkLabId, namePrefix, readState, stateDir } from '../lab/state.js';
import { type ClusterOptions, action, addClusterOptions, collect, loadClusterFromOptions, parseIPFlag, parseIntegerFlag } from './common.js';
import { summaryOf } from './command-table.js';

interface UpFlags extends ClusterOptions {
  mode: string;
  id?: string;
  clientIp?: string[];
  pods: boolean;
  json?: boolean;
}

const STATE_HELP = 'Labs are recorded in $KPSIM_LAB_STATE_DIR, else /run/kpsim/lab (else <tmpdir>/kpsim-lab), one <id>.json each; namespaces are named $KPSIM_LAB_NAME_PREFIX-<id>-node, -client, -ep-N (default prefix kpsim-lab).';

export function registerLab(program: Command): void {
  const lab = program.command('lab').description(summaryOf('lab')).addHelpText('after', `\n${STATE_HELP}`);

  const up = lab.command('up').description('make a lab for the cluster: namespaces for the node, a client and each endpoint\'s pod, the node\'s rules loaded into the kernel, the pods served; it stays up until `kpsim lab down`')
    .addOption(new Option('--mode <mode>', `the proxy mode whose rules the kernel runs: ${LAB_MODES.join(', ')}`).default('iptables'))
    .option('--id <id>', 'the lab\'s id (default: random); namespaces are named after it')
    .option('--client-ip <ip>', 'an address for the client namespace to send from (repeatable; default 100.64.0.1 and 2001:db8:c11e::1)', collect)
    .option('--no-pods', 'serve nothing at the endpoints (the kernel still NATs; nobody answers)')
    .option('--json', 'print the lab\'s record as JSON')
    .addHelpText('after', `\n${STATE_HELP}`);
  addClusterOptions(up);
  up.action(action(async (flags: UpFlags) => {
    const mode = parseLabMode(flags.mode, '--mode');
    const clientSources = flags.clientIp?.map((ip) => parseIPFlag('--client-ip', ip));
    const loaded = await loadClusterFromOptions(flags);
    const started = performance.now();
    const lab = await labUp(loaded, {
      mode,
      ...(flags.id !== undefined ? { id: flags.id } : {}),
      ...(clientSources !== undefined ? { clientSources } : {}),
      servers: flags.pods,
      files: flags.file ?? [],
      onStep: flags.json ? undefined : (line) => process.stderr.write(`lab: ${line}\n`),
    });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(lab.state, null, 2)}\n`);
      return;
    }
    process.stdout.write(describeLab(lab.state.id, lab.plan, mode, performance.now() - started));
  }));

  lab.command('status').description('list the labs that are up: namespaces, processes, what was loaded')
    .option('--json', 'print the labs\' records as JSON')
    .addHelpText('after', `\n${STATE_HELP}`)
    .action(action(async (flags: { json?: boolean }) => {
      const statuses = await labStatuses(stateDir());
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(statuses.map((s) => ({ ...s.state, namespacesPresent: s.namespacesPresent, processesAlive: s.processesAlive })), null, 2)}\n`);
        return;
      }
      if (statuses.length === 0) {
        process.stdout.write(`no lab is up (records in ${stateDir()})\n`);
        return;
      }
      for (const s of statuses) {
        const loaded = s.state.loaded.map((l) => `IPv${l.family} ${l.tool} ${l.bytes} bytes`).join(', ') || 'nothing';
        process.stdout.write(`${s.state.id}  ${s.state.status}  mode ${s.state.mode}  node ${s.state.node}  since ${s.state.createdAt}\n`
          + `  namespaces ${s.namespacesPresent}/${s.state.namespaces.length} present (${s.state.prefix}-*), processes ${s.processesAlive}/${s.state.processes.length} running, loaded: ${loaded}\n`);
      }
    }));

  lab.command('down').description('remove a lab (--id), or every lab: its processes, its namespaces (also those a crashed run left, found by name), its record')
    .option('--id <id>', 'the lab to remove (default: all of them)')
    .addHelpText('after', `\n${STATE_HELP}`)
    .action(action(async (flags: { id?: string }) => {
      const dir = stateDir();
      let report: DownReport;
      if (flags.id !== undefined) {
        const state = readState(dir, checkLabId(flags.id));
        // Without a record (a run that crashed before writing it), the namespaces named after the id.
        report = state !== undefined ? await labDown(dir, state) : await labDownNamed(`${namePrefix()}-${flags.id}-`);
        if (state === undefined && report.namespaces.length === 0) throw new KpsimError('KPSIM_ERR_LAB_NOT_FOUND', `no lab ${flags.id} is up (no record in ${dir}, no namespace named ${namePrefix()}-${flags.id}-*)`);
      } else {
        report = await labDownAll(dir, namePrefix());
      }
      process.stdout.write(summaryOfDown(report));
    }));

  const bench = lab.command('sync-bench').description('time the kernel taking kube-proxy\'s syncs, full and after a one-service change (iptables-restore full and partial, nft -f full and incremental), beside kpsim\'s compile time')
    .option('--services <n>', 'generate a cluster of this many services (when no -f is given)', '1000')
    .option('--endpoints <n>', 'endpoints per generated service', '10')
    .option('--modes <list>', `modes to time, comma-separated: ${LAB_MODES.join(', ')}`, LAB_MODES.join(','))
    .option('--runs <n>', 'runs per figure (the median is printed)', '3')
    .option('--json', 'print the rows as JSON');
  addClusterOptions(bench, { required: false });
  bench.action(action(async (flags: ClusterOptions & { services: string; endpoints: string; modes: string; runs: string; json?: boolean }) => {
    const modes = [...new Set(flags.modes.split(',').map((m) => m.trim()).filter((m) => m !== '').map((m) => parseLabMode(m, '--modes')))];
    const runs = parseIntegerFlag('--runs', flags.runs, 1, 100);
    let target;
    if (flags.file !== undefined) {
      target = await loadClusterFromOptions(flags);
    } else {
      target = generatedCluster(parseIntegerFlag('--services', flags.services, 1, 100_000), parseIntegerFlag('--endpoints', flags.endpoints, 1, 1000));
    }
    const result = await runSyncBench(target.cluster, target.node, { modes, runs, ...(flags.json ? {} : { onStep: (line: string) => process.stderr.write(`sync-bench: ${line}\n`) }) });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    process.stdout.write(formatSyncBench(result, runs));
  }));

  for (const sub of lab.commands) sub.exitOverride();
}

function formatSyncBench(result: SyncBenchResult, runs: number): string {
  const header = ['mode', 'services', 'endpoints', 'kpsim compile ms', 'first load ms', 'full sync', 'ms', 'one-service sync', 'ms', 'no-change ms'];
  const rows = result.rows.map((r) => [r.mode, String(r.services), String(r.endpoints), r.compileMs.toFixed(1), r.loadMs.toFixed(1),
    `${r.fullName} (${r.fullBytes} B)`, r.fullMs.toFixed(1), `${r.partialName} (${r.partialBytes} B)`, r.partialMs.toFixed(1), r.noChangeMs.toFixed(1)]);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const lines = all.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  lines.push('', `medians of ${runs} runs of each tool, start to exit, on kernel ${kernelRelease()}; a partial sync rewrites the whole filter table and nat's fixed chains even when nothing changed (no-change ms)`);
  for (const s of result.skipped) lines.push(`skipped: ${s}`);
  return `${lines.join('\n')}\n`;
}
function summaryOfDown(r: DownReport): string {
  if (r.labs.length === 0 && r.namespaces.length === 0) return 'no lab was up\n';
  return `removed ${r.labs.length > 0 ? `lab ${r.labs.join(', ')}: ` : ''}${r.namespaces.length} namespace${r.namespaces.length === 1 ? '' : 's'}, ${r.processes.length} process${r.processes.length === 1 ? '' : 'es'} stopped\n`;
}

function describeLab(id: string, plan: LabPlan, mode: string, ms: number): string {
  const lines = [
    `lab ${id} up in ${(ms / 1000).toFixed(1)} s: ${mode} mode, node namespace ${plan.names.node}`,
    `  node addresses: ${plan.nodeIPs.join(', ') || '(none)'} on ${IFACES.uplink}; pod gateway ${Object.values(plan.podGateways).join(', ')} on ${IFACES.bridge}`,
    `  client ${plan.names.client}: ${plan.clientSources.join(', ')}`,
    ...plan.pods.map((p) => `  ${p.placement === 'host' ? 'host network' : p.placement === 'local' ? 'local pod ' : 'remote pod'} ${p.ns}${p.podName !== undefined ? ` (${p.podName})` : ''}: ${p.ports.map((port) => `${port.endpoint}/${port.protocol}`).join(', ')}`),
    `try:  ip netns exec ${plan.names.client} curl -s http://SERVICE-IP:PORT/`,
    `stop: kpsim lab down --id ${id}`,
  ];
  return `${lines.join('\n')}\n`;
}
