/**
 * `kpsim load`: real HTTP load (or, with --proto udp, request/response datagrams) to the
 * cluster's backend pods: through the userspace proxy on loopback (--mode userspace, to kpsim's
 * pods or your own servers), or through a proxy mode's rules in a real kernel
 * (--mode kernel-iptables, kernel-nftables, kernel-ipvs: a kpsim lab, root). `kpsim simulate` and
 * `kpsim compare` simulate the modes without a kernel.
 */
import { type Command, Option } from 'commander';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { formatLoadReport } from '../load/format.js';
import { runLoadTest } from '../load/load-test.js';
import { startProgressBar } from '../load/progress.js';
import type { LoadProgress } from '../load/types.js';
import { parseLabMode } from '../lab/kernel-modes.js';
import { type TargetSpec, parseNodePortFlag, parseTargetFlag } from '../load/target.js';
import {
  type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, parseIntegerFlag, parseNumberFlag, usageError,
} from './common.js';
import { summaryOf } from './command-table.js';
import { type NodeRunFlags, addNodeRunOptions, parseNodeRunFlags } from './node-flags.js';

/** The proxy modes kube-proxy has; userspace moves real bytes on loopback, kernel-* through a kernel lab. */
const MODES = ['userspace', 'iptables', 'ipvs', 'nftables'] as const;
const KERNEL_MODES = ['kernel-iptables', 'kernel-nftables', 'kernel-ipvs'] as const;
type KernelLoadMode = (typeof KERNEL_MODES)[number];

export const LOAD_DEFAULTS = { connections: '10', duration: '10', pipelining: '1', mode: 'userspace', proto: 'tcp' } as const;

/** Bounds on --rate and --requests: every load loop is bounded in count and time. */
const MAX_RATE = 1_000_000;
const MAX_REQUESTS = 100_000_000;

interface LoadFlags extends ClusterOptions, NodeRunFlags {
  target?: string;
  proto: string;
  rate?: string;
  requests?: string;
  nodeport?: string;
  mode: string;
  scheduler?: string;
  connections: string;
  duration: string;
  pipelining: string;
  keepalive: boolean;
  json?: boolean;
}

export function registerLoad(program: Command): void {
  const cmd = program
    .command('load')
    .description(summaryOf('load'))
    .option('--target <svc/NAME[:port]>', 'a service port, by its ClusterIP: svc/NAME, svc/NAMESPACE/NAME, optionally :PORT (name or number)')
    .option('--nodeport <NODE:PORT>', 'a node port of this node: node name or node IP, and the port')
    .addOption(new Option('--mode <mode>', `proxy mode to load: userspace (the proxy on loopback), or ${KERNEL_MODES.join(', ')} (that mode's rules in a real kernel: a kpsim lab, root)`).default(LOAD_DEFAULTS.mode))
    .option('--scheduler <name>', `IPVS scheduler for the proxy: ${schedulerNames.join(', ')} (default: the config's ipvs.scheduler, else rr)`)
    .option('--connections <n>', 'concurrent client connections', LOAD_DEFAULTS.connections)
    .option('--duration <seconds>', 'how long to send load', LOAD_DEFAULTS.duration)
    .option('--pipelining <n>', 'requests in flight per connection', LOAD_DEFAULTS.pipelining)
    .option('--no-keepalive', 'one request per TCP connection (every request is a new connection for the scheduler)')
    .option('--proto <tcp|udp>', 'the service port\'s protocol: tcp (HTTP) or udp (request/response datagrams; --connections client sockets)', LOAD_DEFAULTS.proto)
    .option('--rate <n>', 'requests per second in total (default: tcp as fast as possible, udp 1000)')
    .option('--requests <n>', 'stop after this many requests (or at --duration, whichever comes first)')
    .option('--json', 'print the report as JSON (schema kpsim.load/v1)');
  addNodeRunOptions(cmd);
  addClusterOptions(cmd);
  cmd.action(action(async (flags: LoadFlags) => {
    const target = targetOf(flags);
    checkMode(flags.mode);
    if (flags.scheduler !== undefined && !isSchedulerName(flags.scheduler)) {
      throw usageError('--scheduler', `${JSON.stringify(flags.scheduler)} is not one of ${schedulerNames.join(', ')}`);
    }
    const connections = parseIntegerFlag('--connections', flags.connections, 1, 10_000);
    const durationSeconds = parseNumberFlag('--duration', flags.duration, 0.1);
    const pipelining = parseIntegerFlag('--pipelining', flags.pipelining, 1, 1000);
    if (!flags.keepalive && pipelining > 1) throw usageError('--pipelining', 'pipelining needs keep-alive; leave out --no-keepalive or --pipelining');
    const protocol = parseChoiceFlag('--proto', flags.proto.toLowerCase(), ['tcp', 'udp'] as const) === 'udp' ? 'UDP' : 'TCP';
    if (protocol === 'UDP' && pipelining > 1) throw usageError('--pipelining', 'UDP has no pipelining: every datagram is its own request');
    const rate = flags.rate === undefined ? undefined : parseIntegerFlag('--rate', flags.rate, 1, MAX_RATE);
    const requests = flags.requests === undefined ? undefined : parseIntegerFlag('--requests', flags.requests, 1, MAX_REQUESTS);

    if (isKernelMode(flags.mode)) checkKernelFlags(flags);

    const loaded = await loadClusterFromOptions(flags);
    let progress: ReturnType<typeof startProgressBar> | undefined;
    try {
      const common = {
        target,
        connections,
        durationSeconds,
        pipelining,
        keepAlive: flags.keepalive,
        protocol,
        ...(rate !== undefined ? { rate } : {}),
        ...(requests !== undefined ? { requests } : {}),
        onStart: (_resolved: unknown, listener: string) => { progress = startProgressBar(`load ${listener}`, durationSeconds); },
        onProgress: (p: LoadProgress) => progress?.listener(p),
      } as const;
      const report = isKernelMode(flags.mode)
        ? await (await import('../lab/kernel-load.js')).runKernelLoadTest(loaded, { ...common, mode: parseLabMode(flags.mode.slice('kernel-'.length), '--mode'), lab: { files: flags.file ?? [] } })
        : await runLoadTest(loaded, { ...common, ...(flags.scheduler !== undefined ? { scheduler: flags.scheduler } : {}), ...parseNodeRunFlags(flags, loaded) });
      progress?.stop();
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatLoadReport(report));
    } finally {
      progress?.stop();
    }
  }));
}

function targetOf(flags: LoadFlags): TargetSpec {
  if (flags.target !== undefined && flags.nodeport !== undefined) throw usageError('--target', 'give --target or --nodeport, not both');
  if (flags.target !== undefined) return parseTargetFlag(flags.target);
  if (flags.nodeport !== undefined) return parseNodePortFlag(flags.nodeport);
  throw usageError('--target', 'say where to send load: --target svc/NAME[:port] or --nodeport NODE:PORT');
}

function isKernelMode(mode: string): mode is KernelLoadMode {
  return (KERNEL_MODES as readonly string[]).includes(mode);
}

function checkMode(mode: string): void {
  if (mode === 'userspace' || isKernelMode(mode)) return;
  if ((MODES as readonly string[]).includes(mode)) {
    throw usageError('--mode', `${mode} mode is not load-tested with real bytes on loopback: \`kpsim simulate\` and \`kpsim compare\` simulate it, and --mode kernel-${mode} runs its rules in a real kernel (a kpsim lab, root)`);
  }
  throw usageError('--mode', `${JSON.stringify(mode)} is not one of userspace, ${KERNEL_MODES.join(', ')}`);
}

/** The flags that shape the userspace proxy's node have no meaning for a kernel's rules. */
function checkKernelFlags(flags: LoadFlags): void {
  if (flags.scheduler !== undefined) throw usageError('--scheduler', `${flags.mode} picks endpoints with its own rules; --scheduler is for userspace mode`);
  const proxyOnly: [string, boolean][] = [
    ['--backend', (flags.backend ?? []).length > 0], ['--no-pods', flags.pods === false],
    ['--workers', flags.workers !== undefined && flags.workers !== '1'], ['--udp-timeout', flags.udpTimeout !== undefined],
  ];
  const given = proxyOnly.find(([, set]) => set);
  if (given !== undefined) throw usageError(given[0], `${given[0]} shapes the userspace proxy's node; ${flags.mode} runs the lab's own pods behind the kernel's rules`);
}
