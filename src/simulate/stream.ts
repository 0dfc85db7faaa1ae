/**
 * The seeded stream of new connections every simulation replays: `kpsim simulate` (many clients
 * spread over a /16, arrivals uniform over a duration, exponential lifetimes) and `kpsim
 * compare`'s simulated rows (one client host, as one load generator is, opening a connection
 * every interval and keeping a fixed number open) are two shapes of the same stream, and every
 * mode of one run sees the same events.
 */
import { joinHostPort, type Family } from '../util/ip.js';
import { seededRng } from '../util/random.js';
import type { OpenEvent } from './replay.js';

/** Source ports as Linux hands them out: net.ipv4.ip_local_port_range 32768-60999. */
export const EPHEMERAL_FIRST = 32768;
export const EPHEMERAL_COUNT = 60999 - 32768 + 1;

/** Where `clients: 'spread'` draws its clients from, per family. */
export const SPREAD_CLIENTS: Readonly<Record<Family, string>> = { 4: '100.64.0.0/16', 6: '2001:db8:c11e::/112' };

export interface StreamShape {
  readonly connections: number;
  readonly family: Family;
  /** 'spread': random hosts of SPREAD_CLIENTS with random ports; else one host, ports in turn. */
  readonly clients: 'spread' | { readonly ip: string };
  /** 'uniform': random times over the duration; 'even': one every `intervalSeconds`. */
  readonly arrivals: { readonly kind: 'uniform'; readonly durationSeconds: number } | { readonly kind: 'even'; readonly intervalSeconds: number };
  /** How long each connection stays open. */
  readonly lifetime: { readonly kind: 'exponential'; readonly meanSeconds: number } | { readonly kind: 'fixed'; readonly seconds: number };
  /** A packet this often on an open connection (keeps an idle IPVS entry from timing out). */
  readonly keepaliveSeconds?: number;
  readonly seed: number;
}

/** The stream's events, in time order. */
export function connectionStream(shape: StreamShape): OpenEvent[] {
  const rng = seededRng(shape.seed);
  const times = shape.arrivals.kind === 'uniform'
    ? Array.from({ length: shape.connections }, () => rng() * (shape.arrivals as { durationSeconds: number }).durationSeconds).sort((a, b) => a - b)
    : Array.from({ length: shape.connections }, (_, i) => i * (shape.arrivals as { intervalSeconds: number }).intervalSeconds);
  return times.map((at, i) => {
    const client = shape.clients === 'spread' ? spreadClient(shape.family, rng) : joinHostPort(shape.clients.ip, EPHEMERAL_FIRST + (i % EPHEMERAL_COUNT));
    // Exponential lifetime; 1 - rng() is in (0, 1], so the log is finite.
    const durationSeconds = shape.lifetime.kind === 'fixed' ? shape.lifetime.seconds : -Math.log(1 - rng()) * shape.lifetime.meanSeconds;
    return {
      kind: 'open' as const, at, client, durationSeconds,
      ...(shape.keepaliveSeconds !== undefined ? { keepaliveSeconds: shape.keepaliveSeconds } : {}),
    };
  });
}

function spreadClient(family: Family, rng: () => number): string {
  const host = Math.floor(rng() * 65536);
  const port = EPHEMERAL_FIRST + Math.floor(rng() * EPHEMERAL_COUNT);
  const ip = family === 4 ? `100.64.${host >> 8}.${host & 0xff}` : `2001:db8:c11e::${host.toString(16)}`;
  return joinHostPort(ip, port);
}
