/**
 * A port's policy chains kept for other nodes (src/iptables/port-reuse.ts): a KUBE-SVC or
 * KUBE-SVL chain is taken over only by its name, with the same masquerade rule and the same
 * endpoints in the same order; at most KEPT_VARIANTS are kept of each name, the oldest dropped
 * first, and keeping one name's variants never drops another name's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEPT_VARIANTS, PortReuse } from '../../src/iptables/port-reuse.js';
import { EndpointBlocks } from '../../src/topology/endpoint-blocks.js';
import type { EndpointInfo } from '../../src/tracker/types.js';

function endpoint(text: string): EndpointInfo {
  const [ip, port] = text.split(':');
  return { ip: ip!, port: Number(port), endpoint: text, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: new Set(), nodeHints: new Set() };
}

/** A kept chain: its name, and a tag to tell two chains of one name apart. */
interface Kept {
  readonly name: string;
  readonly tag: string;
}

interface Keep {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly masquerade: boolean;
  readonly tag: string;
}

interface Lookup {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly masquerade: boolean;
  /** The tag of the chain taken over, or undefined for none. */
  readonly found: string | undefined;
}

interface Case {
  readonly name: string;
  readonly keep: readonly Keep[];
  readonly lookups: readonly Lookup[];
}

const SVC = 'KUBE-SVC-AAAAAAAAAAAAAAAA';
const SVL = 'KUBE-SVL-AAAAAAAAAAAAAAAA';
const A = '10.0.0.1:80';
const B = '10.0.0.2:80';
const C = '10.0.0.3:80';

/** KEPT_VARIANTS + 1 chains of one name, each over its own single endpoint: the first is dropped. */
const overflow: Keep[] = Array.from({ length: KEPT_VARIANTS + 1 }, (_, i) => ({ name: SVC, endpoints: [`10.1.0.${i}:80`], masquerade: false, tag: `v${i}` }));

const CASES: readonly Case[] = [
  {
    name: 'nothing kept',
    keep: [],
    lookups: [{ name: SVC, endpoints: [A], masquerade: false, found: undefined }],
  },
  {
    name: 'same name, endpoints and masquerade',
    keep: [{ name: SVC, endpoints: [A, B], masquerade: true, tag: 'svc' }],
    lookups: [
      { name: SVC, endpoints: [A, B], masquerade: true, found: 'svc' },
      { name: SVC, endpoints: [A, B], masquerade: false, found: undefined },
      { name: SVC, endpoints: [B, A], masquerade: true, found: undefined },
      { name: SVC, endpoints: [A], masquerade: true, found: undefined },
      { name: SVL, endpoints: [A, B], masquerade: true, found: undefined },
    ],
  },
  {
    name: 'two names over the same endpoints',
    keep: [
      { name: SVC, endpoints: [A, B, C], masquerade: true, tag: 'svc' },
      { name: SVL, endpoints: [A, B, C], masquerade: false, tag: 'svl' },
    ],
    lookups: [
      { name: SVC, endpoints: [A, B, C], masquerade: true, found: 'svc' },
      { name: SVL, endpoints: [A, B, C], masquerade: false, found: 'svl' },
      { name: SVL, endpoints: [A, B, C], masquerade: true, found: undefined },
    ],
  },
  {
    name: 'the oldest of one name found first',
    keep: [
      { name: SVL, endpoints: [A], masquerade: false, tag: 'old' },
      { name: SVL, endpoints: [A], masquerade: false, tag: 'new' },
    ],
    lookups: [{ name: SVL, endpoints: [A], masquerade: false, found: 'old' }],
  },
  {
    name: `at most ${KEPT_VARIANTS} of one name, the oldest dropped`,
    keep: overflow,
    lookups: overflow.map((k, i) => ({ name: SVC, endpoints: k.endpoints, masquerade: false, found: i === 0 ? undefined : k.tag })),
  },
  {
    name: "one name's variants do not drop another name's",
    keep: [{ name: SVL, endpoints: [C], masquerade: false, tag: 'svl' }, ...overflow],
    lookups: [
      { name: SVL, endpoints: [C], masquerade: false, found: 'svl' },
      { name: SVC, endpoints: overflow[0]!.endpoints, masquerade: false, found: undefined },
      { name: SVC, endpoints: overflow[KEPT_VARIANTS]!.endpoints, masquerade: false, found: `v${KEPT_VARIANTS}` },
    ],
  },
];

for (const c of CASES) {
  test(`port reuse policy chains: ${c.name}`, () => {
    const reuse = new PortReuse<Kept, { readonly endpoints: readonly EndpointInfo[] }>(undefined, false);
    // Endpoint objects made anew for every list: chains are matched by endpoint text, as across nodes.
    for (const k of c.keep) reuse.keepPolicyChain({ name: k.name, tag: k.tag }, k.endpoints.map(endpoint), k.masquerade);
    for (const l of c.lookups) {
      const found = reuse.policyChain(l.name, l.endpoints.map(endpoint), l.masquerade);
      const kept = c.keep.map((k) => `${k.tag}=${k.name.slice(0, 9)}[${k.endpoints.join(' ')}]${k.masquerade ? '+masq' : ''}`).join(', ');
      assert.equal(found?.tag, l.found, `${l.name} over [${l.endpoints.join(' ')}] masquerade=${l.masquerade}; kept: ${kept}`);
      if (found !== undefined) assert.equal(found.name, l.name);
    }
  });
}

test('port reuse: blocks are kept apart from policy chains', () => {
  const reuse = new PortReuse<Kept, { readonly endpoints: readonly EndpointInfo[] }>(undefined, false);
  assert.ok(reuse.blocks instanceof EndpointBlocks);
  reuse.keepPolicyChain({ name: SVC, tag: 'svc' }, [endpoint(A)], false);
  assert.equal(reuse.takeEndpointChains([endpoint(A)]), false, 'a policy chain kept is not a block of endpoint chains');
});
