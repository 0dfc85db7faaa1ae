/**
 * The flags `kpsim up`, `load` and `compare` share about how the node runs on loopback:
 *
 *   --backend ENDPOINT=HOST:PORT   an endpoint served by your own server (repeatable)
 *   --no-pods                      no built-in backend pods at all
 *   --udp-timeout DURATION         kube-proxy's udpIdleTimeout (default: the config's, else 250ms)
 *   --workers N                    the proxy on N threads sharing the listeners (proxy/workers.ts)
 */
import type { Command } from 'commander';
import type { NodeRunOptions } from '../load/cluster-run.js';
import { parseGoDurationSeconds } from '../model/proxy-config.js';
import { type HostPort, planAddressMap } from '../proxy/address-map.js';
import { userBackendProblem } from '../proxy/cluster.js';
import { MAX_WORKERS } from '../proxy/workers.js';
import { joinHostPort, normalizeIP, splitHostPortText } from '../util/ip.js';
import { type LoadedCluster, collect, parseIntegerFlag, usageError } from './common.js';

export interface NodeRunFlags {
  backend?: string[];
  /** Commander's `--no-pods`: false when given. */
  pods?: boolean;
  udpTimeout?: string;
  workers?: string;
}

export function addNodeRunOptions(cmd: Command): Command {
  return cmd
    .option('--backend <ENDPOINT=HOST:PORT>', 'send an endpoint\'s traffic to your own server on loopback instead of a built-in pod, e.g. 10.244.0.5:8080=127.0.0.1:3000 (repeatable)', collect)
    .option('--no-pods', 'start no built-in backend pods: endpoints without a --backend are unreachable, as dead pods')
    .option('--udp-timeout <duration>', 'close a UDP association idle this long, e.g. 250ms, 2s (kube-proxy\'s udpIdleTimeout; default: the config\'s, else 250ms)')
    .option('--workers <n>', `run the proxy on N threads sharing the listening sockets, with one scheduler state (1 to ${MAX_WORKERS}; default 1)`, '1');
}

/** The flags as startCluster options, checked against the cluster (usage errors name the flag). */
export function parseNodeRunFlags(flags: NodeRunFlags, loaded: LoadedCluster): NodeRunOptions {
  const userBackends = new Map<string, HostPort>();
  const map = planAddressMap(loaded.states);
  for (const value of flags.backend ?? []) {
    const { endpoint, server } = parseBackendFlag(value);
    if (userBackends.has(endpoint)) throw usageError('--backend', `${endpoint} is given twice`);
    const problem = userBackendProblem(map, endpoint, server);
    if (problem !== undefined) throw usageError('--backend', `${JSON.stringify(value)}: ${problem}`);
    userBackends.set(endpoint, server);
  }
  const udpSeconds = flags.udpTimeout === undefined ? loaded.cluster.config.udpIdleTimeoutSeconds : parseDurationFlag('--udp-timeout', flags.udpTimeout);
  const workers = parseIntegerFlag('--workers', flags.workers ?? '1', 1, MAX_WORKERS);
  return {
    ...(userBackends.size > 0 ? { userBackends } : {}),
    ...(flags.pods === false ? { pods: false } : {}),
    udpIdleTimeoutMs: udpSeconds * 1000,
    ...(workers > 1 ? { workers } : {}),
  };
}

/** "10.244.0.5:8080=127.0.0.1:3000", "[fd00::5]:8080=[::1]:3000" → the endpoint's text and the server. */
export function parseBackendFlag(value: string): { endpoint: string; server: HostPort } {
  const at = value.indexOf('=');
  const bad = (detail: string): never => {
    throw usageError('--backend', `${JSON.stringify(value)} ${detail}`);
  };
  if (at < 0) bad('is not ENDPOINT=HOST:PORT, e.g. 10.244.0.5:8080=127.0.0.1:3000');
  const endpoint = hostPortOf(value.slice(0, at));
  const server = hostPortOf(value.slice(at + 1));
  if (endpoint === undefined) bad('does not start with an endpoint IP:PORT, as in its EndpointSlice');
  if (server === undefined) bad('does not end with HOST:PORT, an IP address on loopback and a port (127.0.0.1:3000, [::1]:3000)');
  return { endpoint: joinHostPort(endpoint!.address, endpoint!.port), server: server! };
}

function hostPortOf(text: string): HostPort | undefined {
  const parts = splitHostPortText(text.trim());
  if (parts === undefined || !/^\d+$/.test(parts.portText)) return undefined;
  const address = normalizeIP(parts.host);
  const port = Number(parts.portText);
  return address !== undefined && port >= 1 && port <= 65535 ? { address, port } : undefined;
}

/** A Go duration ("250ms", "2s", "1m30s") > 0, in seconds. */
function parseDurationFlag(flag: string, value: string): number {
  const seconds = parseGoDurationSeconds(value.trim());
  if (seconds === undefined || !(seconds > 0)) throw usageError(flag, `${JSON.stringify(value)} is not a duration > 0 such as 250ms or 2s`);
  if (seconds * 1000 > 2 ** 31 - 1) throw usageError(flag, `${value} is longer than ${Math.floor((2 ** 31 - 1) / 1000)} s`);
  return seconds;
}
