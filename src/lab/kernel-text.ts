/**
 * Reading what the kernel's tools print (pure): `nft -a monitor trace` (the rules each traced
 * packet matched, for iptables-nft tables and native nftables alike), `conntrack -E -o extended`
 * (the NAT each new connection got), and the rule order of a chain from `nft -a list ruleset`.
 *
 * Why nft's trace and not xtables-monitor: `xtables-monitor --trace` 1.8.9 stops with "unsupported
 * layer 4 protocol value" on the first traced IPv6 packet, and nft's own monitor prints every rule
 * with its handle, which names the rule exactly whatever syntax printed it.
 */

import { braceDelta } from '../nftables/parse.js';

export type L4 = 'tcp' | 'udp' | 'sctp';

/** A connection's first packet, as both tools print it. */
export interface FlowKey {
  readonly proto: L4;
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
}

export function flowKeyText(k: FlowKey): string {
  return `${k.proto} ${k.src} ${k.sport} ${k.dst} ${k.dport}`;
}

export interface TraceEvent {
  /** "ip nat", "ip6 filter", "ip kube-proxy": family and table, as nft names them. */
  readonly table: string;
  readonly chain: string;
  readonly kind: 'rule' | 'policy' | 'return';
  /** "jump KUBE-SVC-X", "accept", "drop", "continue", "goto service-..." */
  readonly verdict: string;
  /** The rule as nft printed it, handle comment removed. */
  readonly text: string;
  readonly handle?: number;
}

export interface TracedPacket {
  readonly id: string;
  readonly key: FlowKey | undefined;
  readonly events: readonly TraceEvent[];
}

/** The table kpsim adds to mark packets for tracing (`meta nftrace set 1`); its own events are left out. */
export const TRACE_TABLE = 'kpsim-trace';

const TRACE_LINE = /^trace id (\S+) (\S+) (\S+) (\S+) (packet: .*|rule .*|policy .*|verdict .*|unknown .*)$/;

/** A try's own key: its protocol, source address and source port (NAT changes the rest). */
export function sourceKeyText(k: Pick<FlowKey, 'proto' | 'src' | 'sport'>): string {
  return `${k.proto} ${k.src} ${k.sport}`;
}

/**
 * `nft -a monitor trace` → one entry per traced connection attempt, keyed by its source (see
 * sourceKeyText). The kernel forgets a packet's trace mark on some paths (a frame a pod sends
 * through the bridge is traced at the bridge's prerouting, then passed up without it), so the
 * trace table marks packets again at every hook; each time the trace starts over, under the same
 * or a new id, and the pieces are put back together by source. A packet the node sends to itself
 * is masqueraded on its way out (nftables mode's `masquerade fully-random` gives it a new source
 * port) and comes back in through lo under a new id: that piece is joined to the packet it
 * continues by what NAT left alone, its IP ID (IPv6: flow label) and destination.
 */
export function parseNftTrace(text: string): TracedPacket[] {
  type Building = { id: string; key: FlowKey | undefined; events: TraceEvent[]; hooks: Set<string> };
  const bySource = new Map<string, Building>();
  const open = new Map<string, Building>();
  /** The packet last seen with this wire identity (see wireIdentity), for pieces NAT renamed. */
  const byWire = new Map<string, Building>();
  const packets: Building[] = [];
  for (const raw of text.split('\n')) {
    const m = TRACE_LINE.exec(raw.trim());
    if (!m) continue;
    const [, id, family, table, chain, rest] = m as unknown as [string, string, string, string, string, string];
    const ownTable = table === TRACE_TABLE;
    if (rest.startsWith('packet: ')) {
      if (!ownTable) continue;
      const key = readPacketKey(rest);
      const source = key === undefined ? `unknown ${id}` : sourceKeyText(key);
      const wire = wireIdentity(rest);
      let packet = bySource.get(source);
      if (packet === undefined && wire !== undefined && /\biif "lo"/.test(rest)) {
        const continued = byWire.get(wire);
        if (continued !== undefined && !continued.hooks.has(chain)) {
          packet = continued;
          bySource.set(source, packet);
        }
      }
      if (packet === undefined) {
        packet = { id, key, events: [], hooks: new Set<string>() };
        bySource.set(source, packet);
        packets.push(packet);
      }
      // The same hook again for the same source: a retransmission (a SYN sent again), not the first packet.
      if (packet.hooks.has(chain)) {
        open.delete(id);
        continue;
      }
      packet.hooks.add(chain);
      open.set(id, packet);
      if (wire !== undefined) byWire.set(wire, packet);
      continue;
    }
    if (ownTable) continue;
    const packet = open.get(id);
    if (packet === undefined) continue;
    const event = readEvent(`${family} ${table}`, chain, rest);
    if (event !== undefined) packet.events.push(event);
  }
  return packets.map(({ id, key, events }) => ({ id, key, events }));
}

/** What NAT leaves of a packet: its IP ID (IPv6: flow label), destination address and port. */
function wireIdentity(line: string): string | undefined {
  const id = /\bip id (\d+)/.exec(line)?.[1] ?? /\bip6 flowlabel (\d+)/.exec(line)?.[1];
  const dst = /\bip6? daddr (\S+)/.exec(line)?.[1];
  const dport = /\b(?:tcp|udp|sctp) dport (\d+)/.exec(line)?.[1];
  return id === undefined || dst === undefined || dport === undefined ? undefined : `${id} ${dst} ${dport}`;
}

function readEvent(table: string, chain: string, rest: string): TraceEvent | undefined {
  if (rest.startsWith('policy ')) return { table, chain, kind: 'policy', verdict: rest.slice(7).trim(), text: '' };
  if (rest.startsWith('verdict ')) {
    const verdict = rest.slice(8).trim();
    return { table, chain, kind: verdict === 'return' || verdict === 'continue' ? 'return' : 'rule', verdict, text: '' };
  }
  if (!rest.startsWith('rule ')) return undefined;
  const m = /^rule (.*?)(?: # handle (\d+))? \(verdict ([^)]*)\)\s*$/.exec(rest);
  if (!m) return undefined;
  return { table, chain, kind: 'rule', verdict: m[3]!, text: m[1]!.trim(), ...(m[2] !== undefined ? { handle: Number(m[2]) } : {}) };
}

/** "… ip saddr A ip daddr B … tcp sport S tcp dport D …" */
export function readPacketKey(line: string): FlowKey | undefined {
  const src = /\bip6? saddr (\S+)/.exec(line)?.[1];
  const dst = /\bip6? daddr (\S+)/.exec(line)?.[1];
  const l4 = /\b(tcp|udp|sctp) sport (\d+) \1 dport (\d+)/.exec(line);
  if (src === undefined || dst === undefined || !l4) return undefined;
  return { proto: l4[1] as L4, src, sport: Number(l4[2]), dst, dport: Number(l4[3]) };
}

/** What conntrack recorded for a new connection. */
export interface ConntrackEntry {
  readonly key: FlowKey;
  /** The reply direction's source, "ip:port": the endpoint after DNAT (the original destination when not DNATed). */
  readonly replySource: { ip: string; port: number };
  /** The reply direction's destination: the original source, unless it was SNATed (masqueraded). */
  readonly replyDestination: { ip: string; port: number };
}

export function isDnat(entry: ConntrackEntry): boolean {
  return entry.replySource.ip !== entry.key.dst || entry.replySource.port !== entry.key.dport;
}

export function isSnat(entry: ConntrackEntry): boolean {
  return entry.replyDestination.ip !== entry.key.src || entry.replyDestination.port !== entry.key.sport;
}

/** `conntrack -E -e NEW -o extended` lines (or `conntrack -L -o extended`), TCP/UDP/SCTP only. */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const proto = /\b(tcp|udp|sctp)\s+\d+\s/.exec(line)?.[1] as L4 | undefined;
    if (proto === undefined) continue;
    const kv = [...line.matchAll(/\b(src|dst|sport|dport)=(\S+)/g)].map((m) => m[2]!);
    if (kv.length < 8) continue;
    const [src, dst, sport, dport, rsrc, rdst, rsport, rdport] = kv as [string, string, string, string, string, string, string, string];
    out.push({
      key: { proto, src, sport: Number(sport), dst, dport: Number(dport) },
      replySource: { ip: rsrc, port: Number(rsport) },
      replyDestination: { ip: rdst, port: Number(rdport) },
    });
  }
  return out;
}

/**
 * `conntrack -E -e DESTROY -o extended` lines → the entries of answered connections the kernel
 * removed. An entry that never saw a reply ([UNREPLIED]: a SYN
 * answered by RST, a datagram nobody answered) is left out: the kernel removes those as part of
 * refusing them, and what a missing entry means for such a try is the judgement's to say.
 */
export function parseConntrackDestroyed(text: string): ConntrackEntry[] {
  const answered = text.split('\n').filter((line) => line.includes('[DESTROY]') && !line.includes('[UNREPLIED]'));
  return parseConntrack(answered.join('\n'));
}

/**
 * `nft -a list ruleset` → each chain's rule handles in order ("ip nat KUBE-SERVICES" → [4, 7, …]),
 * so that a traced rule's handle gives its place in the chain.
 */
export function parseRuleHandles(text: string): Map<string, number[]> {
  const chains = new Map<string, number[]>();
  let table: string | undefined;
  let chain: number[] | undefined;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const before = depth;
    depth += braceDelta(line);
    if (before === 0) {
      const t = /^table (\S+) (\S+) \{/.exec(line);
      table = t ? `${t[1]} ${t[2]}` : undefined;
      continue;
    }
    if (before === 1) {
      const c = /^chain (\S+) \{/.exec(line);
      chain = c && table !== undefined ? [] : undefined;
      if (chain !== undefined) chains.set(`${table} ${unquote(c![1]!)}`, chain);
      continue;
    }
    // A rule: a line of its own inside a chain, ending with its handle.
    const h = before === 2 && depth === 2 ? /# handle (\d+)$/.exec(line) : null;
    if (h && chain !== undefined) chain.push(Number(h[1]));
  }
  return chains;
}

function unquote(name: string): string {
  return name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1) : name;
}

/** iptables-save text → each chain's "-A" lines in order, keyed "ip nat KUBE-SERVICES" for the family. */
export function iptablesSaveRules(text: string, family: 4 | 6): Map<string, string[]> {
  const prefix = family === 4 ? 'ip' : 'ip6';
  const chains = new Map<string, string[]>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^-A (\S+) /.exec(line);
    if (!m) continue;
    const key = `${prefix} ${table} ${m[1]}`;
    const list = chains.get(key) ?? [];
    list.push(line);
    chains.set(key, list);
  }
  return chains;
}
