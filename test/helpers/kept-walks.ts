/**
 * The check every kept-walk test makes: a tracer keeping walks answers each packet exactly as
 * one walking every packet does (the same JSON, the same error, the same seeded sample).
 */
import assert from 'node:assert/strict';
import type { Packet, TraceOptions } from '../../src/trace/types.js';

/** What both modes' tracers offer (createTracer, createNftTracer). */
export interface ComparableTracer {
  trace(packet: Packet, opts?: TraceOptions): unknown;
  sample(packet: Packet, seed: number, opts?: TraceOptions): unknown;
}

export class KeptWalkCheck {
  /** Answers compared so far (errors excepted). */
  compared = 0;

  constructor(private readonly keeping: ComparableTracer, private readonly walking: ComparableTracer) {}

  compare(packet: Packet, opts: TraceOptions): void {
    let want: string;
    try {
      want = JSON.stringify(this.walking.trace(packet, opts));
    } catch (e) {
      assert.throws(() => this.keeping.trace(packet, opts), { message: (e as Error).message }, `${JSON.stringify(packet)} ${JSON.stringify(opts)}`);
      return;
    }
    const got = JSON.stringify(this.keeping.trace(packet, opts));
    assert.equal(got, want, `${JSON.stringify(packet)} ${JSON.stringify(opts)}`);
    if (opts.seed !== undefined && !opts.sampleOnly) {
      assert.equal(JSON.stringify(this.keeping.sample(packet, opts.seed, opts)), JSON.stringify(this.walking.sample(packet, opts.seed, opts)), `sample: ${JSON.stringify(packet)} seed ${opts.seed}`);
    }
    this.compared++;
  }
}

/**
 * The destinations kube-proxy's nftables maps send to services, from the table's script
 * (renderNftScript): service IPs with their protocol and port, node ports on each node address.
 */
export function nftServiceDestinations(text: string, nodeIPs: readonly string[]): { dst: string; proto: 'tcp' | 'udp'; dport: number }[] {
  const out: { dst: string; proto: 'tcp' | 'udp'; dport: number }[] = [];
  for (const m of text.matchAll(/add element ip kube-proxy service-ips \{ (\S+) \. (tcp|udp) \. (\d+) :/g)) {
    out.push({ dst: m[1]!, proto: m[2] as 'tcp' | 'udp', dport: Number(m[3]) });
  }
  for (const m of text.matchAll(/add element ip kube-proxy service-nodeports \{ (tcp|udp) \. (\d+) :/g)) {
    for (const dst of nodeIPs) out.push({ dst, proto: m[1] as 'tcp' | 'udp', dport: Number(m[2]) });
  }
  return out;
}
