/**
 * A Picker that places each new connection by walking the node's compiled rules with the
 * tracer, as the kernel walks them for a connection's first packet: every `statistic` rule
 * draws its own random number (the tracer's seeded draw, the kernel's 31-bit comparison), and
 * what a walk writes to `recent` lists (kube-proxy's ClientIP affinity: `-m recent --set` in
 * each KUBE-SEP chain) is kept and shown to later connections with its age, so `--rcheck
 * --seconds T --reap` sends a client back to its endpoint while it keeps coming within T.
 *
 * Only the client's own entries are shown to a walk: kube-proxy's recent rules match the source
 * address unmasked (--rsource, no --mask), so no other entry could match.
 */
import { defaultTcpTimeoutsSeconds } from '../ipvs/conn-table.js';
import type { Packet, RecentLookup, TraceOptions, TraceSample } from '../trace/types.js';
import { plainIPv4Value, splitHostPort } from '../util/ip.js';
import { seededUint32 } from '../util/random.js';
import { LingeringCounts, type PickedConnection, type Picker } from './picker.js';

/** What the picker needs of a tracer: one sampled walk. */
export interface SampleTracer {
  sample(packet: Packet, seed: number, opts?: TraceOptions): TraceSample;
}

export interface RuleWalkPickerOptions {
  /** Where the connections go: the packet of each is this with the client's address and port. */
  readonly packet: Omit<Packet, 'src' | 'sport'>;
  /** Endpoints to list even when nothing was placed on them (the target's endpoints). */
  readonly endpoints: readonly string[];
  /** Seed of the walks' random draws. */
  readonly seed: number;
  /** What the picker reports itself as ("iptables random"). */
  readonly label: string;
  /** How long a closed connection stays counted inactive (conntrack's TCP TIME_WAIT, 120 s). */
  readonly lingerSeconds?: number;
}

interface Seen {
  at: number;
  hits: number;
}

export function ruleWalkPicker(tracer: SampleTracer, opts: RuleWalkPickerOptions): Picker {
  const nextSeed = seededUint32(opts.seed);
  const counts = new LingeringCounts(opts.endpoints, opts.lingerSeconds ?? defaultTcpTimeoutsSeconds.TIME_WAIT);
  /** address → list → when it was last set, and how often. */
  const recent = new Map<string, Map<string, Seen>>();
  const clients = new ClientNames();
  // The walks ask the picker's own lists (with ages at the picker's time): nothing is copied
  // per connection. A client in none walks as a fresh client (the tracer's plain lookups).
  // The client being placed and its lists, looked up once per connection: its walk asks them
  // for each endpoint's affinity rule (a map of some 65k clients, a likely cache miss each time).
  let currentHost: string | undefined;
  let currentLists: Map<string, Seen> | undefined;
  const lookup: RecentLookup = {
    find(list, address) {
      const seen = (address === currentHost ? currentLists : recent.get(address))?.get(list);
      return seen === undefined ? undefined : { ageSeconds: counts.now - seen.at, hits: seen.hits };
    },
    *entries(list) {
      for (const [address, lists] of recent) {
        const seen = lists.get(list);
        if (seen !== undefined) yield [address, { ageSeconds: counts.now - seen.at, hits: seen.hits }] as const;
      }
    },
  };
  const withLookup: TraceOptions = { recentLookup: lookup };
  const plain: TraceOptions = {};

  const remember = (sample: TraceSample): void => {
    const updates = sample.recent;
    if (updates === undefined) return;
    for (const update of updates) {
      let lists = recent.get(update.address);
      if (update.removed) {
        lists?.delete(update.list);
        if (lists?.size === 0) recent.delete(update.address);
        continue;
      }
      if (lists === undefined) recent.set(update.address, (lists = new Map()));
      const seen = lists.get(update.list);
      if (seen) {
        seen.at = counts.now;
        seen.hits++;
      } else {
        lists.set(update.list, { at: counts.now, hits: 1 });
      }
    }
  };

  return {
    label: opts.label,
    now: () => counts.now,
    advanceTo: (at: number) => counts.advanceTo(at),
    pick(client: string): PickedConnection | undefined {
      // "ip:port" as the replay names clients; a bare address walks with the port unknown.
      const parts = clients.split(client);
      const host = parts?.ip ?? client;
      const packet: Packet = parts
        ? { proto: opts.packet.proto, src: host, dst: opts.packet.dst, dport: opts.packet.dport, sport: parts.port }
        : { proto: opts.packet.proto, src: host, dst: opts.packet.dst, dport: opts.packet.dport };
      const lists = recent.get(host);
      currentHost = host;
      currentLists = lists;
      const sample = tracer.sample(packet, nextSeed(), lists !== undefined ? withLookup : plain);
      currentHost = undefined;
      currentLists = undefined;
      remember(sample);
      return sample.endpoint === undefined ? undefined : counts.open(sample.endpoint);
    },
    backends: () => counts.backends(),
  };
}

/**
 * Clients' "ip:port" names split as splitHostPort splits them, each host's address normalised
 * once: a simulation's million connections come from some 65k hosts, and parsing each name's
 * address again was a fifth of a kept walk's pick. An IPv4 host in plain form is read as a
 * number (no substring made and hashed per connection), and the same string is handed out for
 * it every time, so the tracer's lookups by address compare it by identity.
 */
class ClientNames {
  private readonly hosts = new Map<string, string | null>();
  private readonly plainV4 = new Map<number, string>();

  split(client: string): { ip: string; port: number } | undefined {
    const colon = client.lastIndexOf(':');
    // Bracketed or bare IPv6 names take the general way.
    if (colon <= 0 || client.indexOf(':') !== colon || colon === client.length - 1) return splitHostPort(client);
    let port = 0;
    for (let i = colon + 1; i < client.length; i++) {
      const digit = client.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) return undefined;
      port = port * 10 + digit;
    }
    if (port > 65535) return undefined;
    const v4 = plainIPv4Value(client, colon);
    if (v4 >= 0) {
      let ip = this.plainV4.get(v4);
      if (ip === undefined) {
        ip = client.slice(0, colon);
        if (this.plainV4.size >= 100_000) this.plainV4.clear();
        this.plainV4.set(v4, ip);
      }
      return { ip, port };
    }
    const host = client.slice(0, colon);
    let ip = this.hosts.get(host);
    if (ip === undefined) {
      ip = splitHostPort(`${host}:0`)?.ip ?? null;
      if (this.hosts.size >= 100_000) this.hosts.clear();
      this.hosts.set(host, ip);
    }
    return ip === null ? undefined : { ip, port };
  }
}
