/**
 * `kpsim diff-nodes A B`: how two nodes' rules differ in one mode, and why (their addresses,
 * zones, local endpoints).
 */
import type { Command } from 'commander';
import { ClusterView } from '../cluster/cluster-view.js';
import { type DiffReason, type NodeDifference, diffNodes } from '../cluster/diff-nodes.js';
import { KpsimError } from '../errors.js';
import { RULES_MODES, defaultRulesMode, modeDriver, parseRulesMode } from '../node/modes.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterWithOverrides, printWarnings, usageError } from './common.js';
import { summaryOf } from './command-table.js';

interface DiffNodesOptions extends ClusterOptions {
  mode?: string;
  scheduler?: string;
  nfacct?: boolean;
  json?: boolean;
}

export function registerDiffNodes(program: Command): void {
  const cmd = program.command('diff-nodes').description(summaryOf('diff-nodes')).argument('<a>', 'a node').argument('<b>', 'another node');
  cmd.configureOutput({ outputError: (text, write) => write(text + swallowedNodesHint(text, cmd.opts<DiffNodesOptions>().file)) });
  addClusterOptions(cmd)
    .option('--mode <mode>', `${RULES_MODES.join(' or ')} (default: the config's mode, else iptables)`)
    .option('--scheduler <name>', 'ipvs: scheduler (default: the config\'s ipvs.scheduler, else rr)')
    .option('--no-nfacct', 'iptables: without the -m nfacct matches')
    .option('--json', 'print the difference as JSON')
    .action(action(async (a: string, b: string, opts: DiffNodesOptions) => {
      if (opts.node !== undefined || opts.nodeIp !== undefined) throw usageError(opts.node !== undefined ? '--node' : '--node-ip', 'diff-nodes takes the two nodes as arguments');
      const cluster = await loadClusterWithOverrides(opts);
      if (!opts.quiet) printWarnings(cluster.warnings);
      const view = new ClusterView(cluster);
      for (const name of [a, b]) {
        if (view.nodeObject(name) === undefined) {
          throw new KpsimError('KPSIM_ERR_CONFIG_UNKNOWN_NODE', `node ${JSON.stringify(name)} is not in the cluster (nodes: ${cluster.nodes.slice(0, 10).map((n) => n.name).join(', ')}${cluster.nodes.length > 10 ? ', ...' : ''})`);
        }
      }
      const mode = opts.mode === undefined ? defaultRulesMode(cluster.config) : parseRulesMode(opts.mode, '--mode');
      if (opts.scheduler !== undefined && !modeDriver(mode).options.includes('scheduler')) throw usageError('--scheduler', `does not apply to ${mode} mode`);
      const diff = diffNodes(view, a, b, mode, { ...(opts.nfacct === false ? { nfacct: false } : {}), ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}) });
      process.stdout.write(opts.json ? `${JSON.stringify(diff)}\n` : formatDifference(diff));
    }));
}

/**
 * `-f` takes every word after it, so `kpsim diff-nodes -f DIR node-1 node-2` reads the nodes as
 * paths and then misses them as arguments: say so, beside commander's error.
 */
function swallowedNodesHint(error: string, files: readonly string[] | undefined): string {
  if (!error.includes('missing required argument') || files === undefined || files.length < 2) return '';
  return `kpsim: -f took every word after it as a path (${files.join(', ')}): give the two nodes before -f, as in kpsim diff-nodes NODE-A NODE-B -f PATH\n`;
}

function formatDifference(d: NodeDifference): string {
  const lines = [`${d.a} and ${d.b}, ${d.mode} mode: ${d.onlyA.length} line${d.onlyA.length === 1 ? '' : 's'} only on ${d.a}, ${d.onlyB.length} only on ${d.b}`];
  const hairpinOnly = d.reasons.filter((r) => r.kind === 'localEndpoints' && r.uses === 'hairpin masquerading only');
  const shown = d.reasons.filter((r) => !hairpinOnly.includes(r));
  if (shown.length + hairpinOnly.length > 0) {
    lines.push('why:');
    for (const r of shown) lines.push(`  ${reasonText(r, d)}`);
    if (hairpinOnly.length > 0) {
      lines.push(`  ${hairpinOnly.length} service port${hairpinOnly.length === 1 ? ' has' : 's have'} local endpoints on one node and not the other with no Local policy: they change only hairpin masquerading (IPVS mode's KUBE-LOOP-BACK set)`);
    }
  } else {
    lines.push('the two nodes look the same to kube-proxy');
  }
  for (const [name, only] of [[d.a, d.onlyA], [d.b, d.onlyB]] as const) {
    if (only.length === 0) continue;
    lines.push(`only on ${name}:`);
    for (const line of only) lines.push(`  ${line}`);
  }
  return `${lines.join('\n')}\n`;
}

function reasonText(r: DiffReason, d: NodeDifference): string {
  const list = (items: readonly string[]): string => (items.length === 0 ? 'none' : items.join(', '));
  switch (r.kind) {
    case 'addresses':
      return `addresses: ${d.a} has ${list(r.a)}; ${d.b} has ${list(r.b)}`;
    case 'zone':
      return `zone: ${d.a} is in ${r.a ?? 'no zone'}, ${d.b} in ${r.b ?? 'no zone'}`;
    case 'podCIDRs':
      return `pod CIDRs (the local detector is the node's own): ${d.a} ${list(r.a)}; ${d.b} ${list(r.b)}`;
    case 'localEndpoints':
      return `${r.servicePort} (${r.uses}): local endpoints on ${d.a}: ${list(r.a)}; on ${d.b}: ${list(r.b)}`;
    case 'topology':
      return `${r.servicePort} (topology hints): ${d.a} uses ${r.a.length} endpoint${r.a.length === 1 ? '' : 's'}, ${d.b} ${r.b.length}`;
  }
}
