/**
 * `kpsim compile`: the rules kube-proxy writes on one node, in any mode kpsim compiles
 * (src/node/modes.ts), in the mode's default output or one of its other views:
 *
 *   --mode iptables   iptables-save text (IPv6 as ip6tables-save), as kube-proxy hands it to
 *                     iptables-restore; --canonical prints it as a kernel's iptables-save
 *                     prints it back; --with-jumps adds the built-in chains and their jumps.
 *   --mode ipvs       ipvsadm -Ln text (--stats, --rate), or --ipsets, or --iptables (the
 *                     ruleset IPVS mode keeps).
 */
import { type Command, Option } from 'commander';
import { type CompiledNode, type ModeCompileOptions, type ModeDriver, type OutputFormat, renderOutput } from '../node/mode-driver.js';
import { RULES_MODES, defaultRulesMode, modeDriver, parseRulesMode } from '../node/modes.js';
import type { Family } from '../util/ip.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, usageError } from './common.js';
import { summaryOf } from './command-table.js';

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

export const COMPILE_MODES = RULES_MODES;

/** The flags that choose an output format, and the format each chooses. */
const FORMAT_FLAGS: readonly { flag: string; key: keyof CompileOptions; format: OutputFormat }[] = [
  { flag: '--canonical', key: 'canonical', format: 'canonical' },
  { flag: '--stats', key: 'stats', format: 'stats' },
  { flag: '--rate', key: 'rate', format: 'rate' },
  { flag: '--ipsets', key: 'ipsets', format: 'ipsets' },
  { flag: '--iptables', key: 'iptables', format: 'iptables' },
];

/** The flags that set compile options (--no-nfacct sets nfacct to false: only that counts as given). */
const OPTION_FLAGS: readonly { flag: string; option: keyof ModeCompileOptions; given: (o: CompileOptions) => boolean }[] = [
  { flag: '--with-jumps', option: 'withJumps', given: (o) => o.withJumps === true },
  { flag: '--no-nfacct', option: 'nfacct', given: (o) => o.nfacct === false },
  { flag: '--random-fully', option: 'randomFully', given: (o) => o.randomFully === true },
  { flag: '--scheduler', option: 'scheduler', given: (o) => o.scheduler !== undefined },
];

export function registerCompile(program: Command): void {
  const cmd = program
    .command('compile')
    .description(summaryOf('compile'));
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
      // Bytes, not a string: a big node's text is written out without being made a string first.
      const { driver, compiled, format } = await compileForOptions(opts);
      process.stdout.write(renderOutput(driver, compiled, format));
    }));
}

export async function compileText(opts: CompileOptions): Promise<string> {
  const { driver, compiled, format } = await compileForOptions(opts);
  return driver.render(compiled, format);
}

/** The node compiled as the flags say, with its mode's driver and the output format asked for. */
async function compileForOptions(opts: CompileOptions): Promise<{ driver: ModeDriver<CompiledNode>; compiled: CompiledNode; format: OutputFormat }> {
  const family = parseFamilyFlag(opts.family);
  const loaded = await loadClusterFromOptions(opts);
  const mode = opts.mode === undefined ? defaultRulesMode(loaded.cluster.config) : parseRulesMode(opts.mode, '--mode');
  const driver = modeDriver(mode);
  const formats = FORMAT_FLAGS.filter((f) => opts[f.key] === true);
  if (formats.length > 1) throw usageError(formats[1]!.flag, `give one of ${formats.map((f) => f.flag).join(', ')}`);
  const format = formats[0]?.format ?? 'kube-proxy';
  if (!driver.formats.includes(format)) throw usageError(formats[0]!.flag, `does not apply to ${mode} mode`);
  const ignored = OPTION_FLAGS.find((f) => f.given(opts) && !driver.options.includes(f.option));
  if (ignored) throw usageError(ignored.flag, `does not apply to ${mode} mode`);
  const states = loaded.states.filter((s) => family === undefined || s.family === family);
  if (states.length === 0) throw usageError('--family', `the cluster has no IPv${family} services or node addresses`);
  const compiled = driver.compile(loaded.node, states, {
    withJumps: opts.withJumps ?? false,
    nfacct: opts.nfacct ?? true,
    randomFully: opts.randomFully ?? false,
    ...(opts.scheduler !== undefined ? { scheduler: opts.scheduler } : {}),
  });
  return { driver, compiled, format };
}

export function parseFamilyFlag(value: string | undefined): Family | undefined {
  if (value === undefined) return undefined;
  return parseChoiceFlag('--family', value, ['4', '6'] as const) === '4' ? 4 : 6;
}
