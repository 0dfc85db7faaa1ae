/**
 * `kpsim up`: run the node on loopback. Backend pods for the cluster's endpoints and the
 * userspace proxy in front of them, with the address map printed so you know where to send
 * traffic; on SIGINT or SIGTERM everything is closed and the counters are printed.
 *
 *   kpsim up -f rules/example
 *   curl -si http://127.10.0.7/        # ClusterIP 10.96.100.20:80 of default/web
 */
import type { Command } from 'commander';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { type ClusterStats, type RunningCluster, startCluster } from '../proxy/index.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseIntegerFlag, parseNumberFlag, usageError } from './common.js';
import { summaryOf } from './command-table.js';
import { type NodeRunFlags, addNodeRunOptions, parseNodeRunFlags } from './node-flags.js';

interface UpOptions extends ClusterOptions, NodeRunFlags {
  scheduler?: string;
  delay?: string;
  payload?: string;
  idleTimeout?: string;
  ephemeralPorts?: boolean;
  json?: boolean;
}

/** setTimeout's limit, in seconds. */
const MAX_IDLE_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

export function registerUp(program: Command): void {
  const cmd = program
    .command('up')
    .description(summaryOf('up'));
  addClusterOptions(cmd)
    .option('--scheduler <name>', `IPVS scheduler that picks endpoints: ${schedulerNames.join(', ')} (default: the config's ipvs.scheduler, else rr)`)
    .option('--delay <ms>', 'backend response delay in milliseconds', '0')
    .option('--payload <bytes>', 'backend response body size in bytes (default: the bare JSON)')
    .option('--idle-timeout <s>', 'close a connection idle this many seconds (0: never)', '900')
    .option('--ephemeral-ports', 'bind ephemeral ports instead of the services\' and pods\' own')
    .option('--json', 'print the address map, then the final counters, as JSON lines');
  addNodeRunOptions(cmd)
    .action(action(async (opts: UpOptions) => {
      await runUp(opts);
    }));
}

async function runUp(opts: UpOptions): Promise<void> {
  const delayMs = parseNumberFlag('--delay', opts.delay ?? '0', 0);
  const payloadBytes = opts.payload === undefined ? undefined : parseIntegerFlag('--payload', opts.payload, 0, 64 * 1024 * 1024);
  const idleTimeoutSeconds = parseNumberFlag('--idle-timeout', opts.idleTimeout ?? '900', 0);
  if (idleTimeoutSeconds > MAX_IDLE_TIMEOUT_SECONDS) throw usageError('--idle-timeout', `${idleTimeoutSeconds} is more than ${MAX_IDLE_TIMEOUT_SECONDS} seconds`);
  if (opts.scheduler !== undefined && !isSchedulerName(opts.scheduler)) {
    throw usageError('--scheduler', `${JSON.stringify(opts.scheduler)} is not an IPVS scheduler: ${schedulerNames.join(', ')}`);
  }
  const loaded = await loadClusterFromOptions(opts);
  const scheduler = opts.scheduler ?? (loaded.cluster.config.ipvsScheduler || 'rr');
  const node = parseNodeRunFlags(opts, loaded);

  // Listen for the signals before anything starts, so that one arriving early still closes cleanly.
  const stopping = stopSignal();
  let cluster: RunningCluster;
  try {
    cluster = await startCluster(loaded, {
      scheduler,
      delayMs,
      ...(payloadBytes !== undefined ? { payloadBytes } : {}),
      idleTimeoutMs: idleTimeoutSeconds * 1000,
      ports: opts.ephemeralPorts ? 'ephemeral' : 'service',
      ...node,
    });
  } catch (e) {
    stopping.stop();
    throw e;
  }
  printStarted(cluster, scheduler, opts.json ?? false, node.workers ?? 1);
  const signal = await stopping.signal;
  await cluster.proxy.refreshStats();
  const stats = cluster.stats();
  await cluster.close();
  printStopped(stats, signal, opts.json ?? false);
}

/** The first SIGINT or SIGTERM, once; `stop` stops listening without one. */
function stopSignal(): { signal: Promise<NodeJS.Signals>; stop: () => void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const stop = (): void => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (received) => {
      stop();
      resolve(received);
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal, stop };
}

function printStarted(cluster: RunningCluster, scheduler: string, json: boolean, workers: number): void {
  const map = cluster.map;
  if (json) {
    process.stdout.write(`${JSON.stringify({ event: 'up', scheduler, ...(workers > 1 ? { workers } : {}), map })}\n`);
    return;
  }
  const proxied = map.entries.filter((e) => e.proxied).length;
  const count = (server: string): number => map.backends.filter((b) => (b.server ?? 'pod') === server).length;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const others = [
    ...(count('user') > 0 ? [`${plural(count('user'), 'endpoint')} on your servers`] : []),
    ...(count('none') > 0 ? [`${plural(count('none'), 'endpoint')} unreachable (no pod)`] : []),
  ];
  process.stdout.write(map.render());
  process.stdout.write(`\nkpsim up: ${proxied} address${proxied === 1 ? '' : 'es'} proxied (scheduler ${scheduler}${workers > 1 ? `, ${workers} workers` : ''}), ${plural(count('pod'), 'backend pod')}${others.map((o) => `, ${o}`).join('')}; Ctrl-C to stop\n`);
}

function printStopped(stats: ClusterStats, signal: NodeJS.Signals, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ event: 'down', signal, stats })}\n`);
    return;
  }
  const endpointRows = stats.proxy.endpoints.map((e) => [
    e.endpoint, e.podName ?? '', String(e.connections), String(e.active), String(e.bytesIn), String(e.bytesOut),
    String(e.errors.refused), String(e.errors.timeout), String(e.errors.reset), String(e.errors.other), e.draining ? 'draining' : '',
  ]);
  const used = stats.proxy.listeners.filter((l) => l.accepted > 0);
  const udp = used.some((l) => l.protocol === 'UDP');
  const listenerRows = used.map((l) => [
    l.key, l.verdict, String(l.accepted), String(l.forwarded), String(l.rejected), String(l.dropped), String(l.failed),
    String(l.retries), String(l.idleTimeouts), ...(udp ? [String(l.datagramsIn), String(l.datagramsOut)] : []),
  ]);
  const workerLines = (stats.proxy.workers ?? []).map((w) =>
    `worker ${w.worker}: ${w.accepted} connection${w.accepted === 1 ? '' : 's'} accepted; scheduling log: ${w.written} entries written, ${w.replayed} replayed, lock found held ${w.lockWaits} times`);
  const out = [
    `\nkpsim up: ${signal}: closed; counters:\n`,
    ...table(['ENDPOINT', 'POD', 'CONNS', 'ACTIVE', 'BYTES-IN', 'BYTES-OUT', 'REFUSED', 'TIMEOUT', 'RESET', 'OTHER', ''], endpointRows),
    '',
    ...(listenerRows.length === 0
      ? ['no connections were accepted']
      : table(['LISTENER', 'VERDICT', 'ACCEPTED', 'FORWARDED', 'REJECTED', 'DROPPED', 'FAILED', 'RETRIES', 'IDLE-CLOSED', ...(udp ? ['DGRAMS-IN', 'DGRAMS-OUT'] : [])], listenerRows)),
    ...(workerLines.length > 0 ? ['', ...workerLines] : []),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

function table(header: readonly string[], rows: readonly string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
