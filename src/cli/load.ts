/**
 * `kpsim load`: real HTTP load (or, with --proto udp, request/response datagrams) through the
 * userspace proxy to the cluster's backend pods or your own servers, on loopback. iptables and
 * IPVS modes are not load-tested with real bytes (kpsim does not install rules in the kernel):
 * `kpsim simulate` and `kpsim compare` simulate them.
 */
import { type Command, Option } from 'commander';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { formatLoadReport } from '../load/format.js';
import { runLoadTest } from '../load/load-test.js';
import { startProgressBar } from '../load/progress.js';
import { type TargetSpec, parseNodePortFlag, parseTargetFlag } from '../load/target.js';
import {
  type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, parseIntegerFlag, parseNumberFlag, usageError,
} from './common.js';
import { summaryOf } from './command-table.js';
import { type NodeRunFlags, addNodeRunOptions, parseNodeRunFlags } from './node-flags.js';

/** The proxy modes kube-proxy has; only userspace moves real bytes in kpsim. */
const MODES = ['userspace', 'iptables', 'ipvs'] as const;

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
    .addOption(new Option('--mode <mode>', 'proxy mode to load: userspace (iptables and ipvs are simulated by `kpsim simulate` and `kpsim compare`)').default(LOAD_DEFAULTS.mode))
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

    const loaded = await loadClusterFromOptions(flags);
    const node = parseNodeRunFlags(flags, loaded);
    let progress: ReturnType<typeof startProgressBar> | undefined;
    try {
      const report = await runLoadTest(loaded, {
        target,
        ...(flags.scheduler !== undefined ? { scheduler: flags.scheduler } : {}),
        connections,
        durationSeconds,
        pipelining,
        keepAlive: flags.keepalive,
        protocol,
        ...(rate !== undefined ? { rate } : {}),
        ...(requests !== undefined ? { requests } : {}),
        ...node,
        onStart: (_resolved, listener) => { progress = startProgressBar(`load ${listener}`, durationSeconds); },
        onProgress: (p) => progress?.listener(p),
      });
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

function checkMode(mode: string): void {
  if (mode === 'userspace') return;
  if ((MODES as readonly string[]).includes(mode)) {
    throw usageError('--mode', `${mode} is not load-tested with real bytes (kpsim installs no kernel rules); \`kpsim simulate\` and \`kpsim compare\` simulate ${mode} mode. Load tests run in userspace mode`);
  }
  throw usageError('--mode', `${JSON.stringify(mode)} is not a proxy mode; kpsim load runs userspace (iptables and ipvs are simulated by \`kpsim simulate\` and \`kpsim compare\`)`);
}
