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

interface UpOptions extends ClusterOptions {
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
    .option('--json', 'print the address map, then the final counters, as JSON lines')
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
    });
  } catch (e) {
    stopping.stop();
    throw e;
  }
  printStarted(cluster, scheduler, opts.json ?? false);
  const signal = await stopping.signal;
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

function printStarted(cluster: RunningCluster, scheduler: string, json: boolean): void {
  const map = cluster.map;
  if (json) {
    process.stdout.write(`${JSON.stringify({ event: 'up', scheduler, map })}\n`);
    return;
  }
  const proxied = map.entries.filter((e) => e.proxied).length;
  process.stdout.write(map.render());
  process.stdout.write(`\nkpsim up: ${proxied} address${proxied === 1 ? '' : 'es'} proxied (scheduler ${scheduler}), ${map.backends.length} backend pod${map.backends.length === 1 ? '' : 's'}; Ctrl-C to stop\n`);
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
  const listenerRows = stats.proxy.listeners.filter((l) => l.accepted > 0).map((l) => [
    l.key, l.verdict, String(l.accepted), String(l.forwarded), String(l.rejected), String(l.dropped), String(l.failed),
    String(l.retries), String(l.idleTimeouts),
  ]);
  const out = [
    `\nkpsim up: ${signal}: closed; counters:\n`,
    ...table(['ENDPOINT', 'POD', 'CONNS', 'ACTIVE', 'BYTES-IN', 'BYTES-OUT', 'REFUSED', 'TIMEOUT', 'RESET', 'OTHER', ''], endpointRows),
    '',
    ...(listenerRows.length === 0
      ? ['no connections were accepted']
      : table(['LISTENER', 'VERDICT', 'ACCEPTED', 'FORWARDED', 'REJECTED', 'DROPPED', 'FAILED', 'RETRIES', 'IDLE-CLOSED'], listenerRows)),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

function table(header: readonly string[], rows: readonly string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
