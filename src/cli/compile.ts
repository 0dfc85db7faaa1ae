/**
 * `kpsim compile`: the rules kube-proxy writes on one node.
 *
 *   --mode iptables   iptables-save text (IPv6 as ip6tables-save), as kube-proxy hands it to
 *                     iptables-restore; --canonical prints it as a kernel's iptables-save
 *                     prints it back; --with-jumps adds the built-in chains and their jumps.
 *   --mode ipvs       ipvsadm -Ln text (--stats, --rate), or --ipsets, or --iptables (the
 *                     ruleset IPVS mode keeps).
 */
import { type Command, Option } from 'commander';
import { renderIpvsCompile } from '../ipvs/compile.js';
import { renderCanonical } from '../iptables/canonical.js';
import { compileIptablesForStates, renderCompiledIptables } from '../node/compile-node.js';
import type { Family } from '../util/ip.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, usageError } from './common.js';

interface CompileOptions extends ClusterOptions {
  mode?: string;
  family?: string;
  withJumps?: boolean;
  canonical?: boolean;
  nfacct?: boolean;
  randomFully?: boolean;
  scheduler?: string;
  ipsets?: boolean;
  iptables?: boolean;
  stats?: boolean;
  rate?: boolean;
}

export const COMPILE_MODES = ['iptables', 'ipvs'] as const;

export function registerCompile(program: Command): void {
  const cmd = program
    .command('compile')
    .description("print the rules kube-proxy writes on one node: iptables-save text, or the IPVS table as ipvsadm -Ln shows it");
  addClusterOptions(cmd)
    .option('--mode <mode>', `proxy mode: ${COMPILE_MODES.join(' or ')} (default: the config's mode, else iptables)`)
    .addOption(new Option('--family <4|6>', 'only this IP family (default: every family in use, IPv4 first)'))
    .option('--with-jumps', 'iptables: add the built-in chains with the jumps kube-proxy installs, so the text loads as a complete ruleset')
    .option('--canonical', 'iptables: print the rules as a kernel\'s iptables-save prints them back after loading')
    .option('--no-nfacct', 'iptables: leave out the -m nfacct matches (for kernels without the counters)')
    .option('--random-fully', 'add --random-fully to MASQUERADE rules, as kube-proxy does when iptables supports it')
    .option('--scheduler <name>', 'ipvs: scheduler (default: the config\'s ipvs.scheduler, else rr)')
    .option('--stats', 'ipvs: ipvsadm -Ln --stats')
    .option('--rate', 'ipvs: ipvsadm -Ln --rate')
    .option('--ipsets', 'ipvs: print the ipsets (ipset save)')
    .option('--iptables', 'ipvs: print the iptables rules IPVS mode keeps (iptables-save)')
    .action(action(async (opts: CompileOptions) => {
      process.stdout.write(await compileText(opts));
    }));
}

export async function compileText(opts: CompileOptions): Promise<string> {
  const family = parseFamilyFlag(opts.family);
  const loaded = await loadClusterFromOptions(opts);
  const mode = parseChoiceFlag('--mode', opts.mode ?? (loaded.cluster.config.mode === 'ipvs' ? 'ipvs' : 'iptables'), COMPILE_MODES);
  const states = loaded.states.filter((s) => family === undefined || s.family === family);
  if (states.length === 0) throw usageError('--family', `the cluster has no IPv${family} services or node addresses`);
  if (mode === 'iptables') {
    const compiled = compileIptablesForStates(loaded.node, states, {
      withJumps: opts.withJumps ?? false,
      nfacct: opts.nfacct ?? true,
      randomFully: opts.randomFully ?? false,
    });
    return renderCompiledIptables(compiled, opts.canonical ? renderCanonical : undefined);
  }
  const texts = states.map((state) => renderIpvsCompile(state, {
    ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}),
    stats: opts.stats ?? false,
    rate: opts.rate ?? false,
    ipsets: opts.ipsets ?? false,
    iptables: opts.iptables ?? false,
    randomFully: opts.randomFully ?? false,
  }));
  if (texts.length === 1) return texts[0]!;
  return texts.map((text, i) => `# IPv${states[i]!.family}, node ${loaded.node.name}\n${text}`).join('');
}

export function parseFamilyFlag(value: string | undefined): Family | undefined {
  if (value === undefined) return undefined;
  return parseChoiceFlag('--family', value, ['4', '6'] as const) === '4' ? 4 : 6;
}
