/**
 * Reusing a stage walked by an earlier path of the same walk (stage-memo.ts) must never change
 * an answer. Checked on random packets, with random marks, origins and conntrack states,
 * through a generated cluster and the hand-written rulesets of the other trace tests, against a
 * tracer whose paths walk every stage themselves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Packet, TraceOptions, Verdict } from '../../src/trace/types.js';
import { generateClusterManifests, seededRandom } from '../helpers/cluster-builders.js';
import { EXTERNAL_CLIENT, EXTERNAL_CLIENT_BLOCKED, MASQUERADE_ALL, NODE_IP, NODE_IPS, OVERALL, TRACE_PACKET_TEST } from './fixtures.js';

interface Case {
  name: string;
  rules: Ruleset;
  localAddresses: readonly string[];
  sources: readonly string[];
  destinations: readonly string[];
  ports: readonly number[];
}

/** Every IPv4 address and port a ruleset's text mentions: the packets that reach its rules. */
function addressesAndPorts(text: string): { destinations: string[]; ports: number[] } {
  const destinations = new Set<string>();
  const ports = new Set<number>();
  for (const m of text.matchAll(/(\d+\.\d+\.\d+\.\d+)(?:\/32)?/g)) destinations.add(m[1]!);
  for (const m of text.matchAll(/--(?:dport|to-destination [\d.]+:)\s*(\d+)/g)) ports.add(Number(m[1]));
  for (const m of text.matchAll(/:(\d{2,5})\b/g)) ports.add(Number(m[1]));
  return { destinations: [...destinations], ports: [...ports].filter((p) => p >= 1 && p <= 65535) };
}

function fixtureCase(name: string, text: string): Case {
  const { destinations, ports } = addressesAndPorts(text);
  return {
    name, rules: parseIptablesSave(text), localAddresses: NODE_IPS,
    sources: ['10.0.0.2', '10.180.0.1', '10.180.0.2', EXTERNAL_CLIENT, EXTERNAL_CLIENT_BLOCKED, NODE_IP, '127.0.0.1'],
    destinations: [...destinations, NODE_IP, '127.0.0.1'], ports: [...ports, 80, 443, 3001],
  };
}

/**
 * Paths that part in a service chain and then meet rules that tell their endpoints apart: an
 * indexed chain (more than 12 rules) pinning some endpoints' addresses, a network rule every
 * endpoint on one port is checked against, a mark set for one endpoint only. A stage reused
 * when it should not be shows up here (each guard of stage-memo.ts has a packet that needs it).
 */
const ENDPOINT_AWARE = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:BY-ADDRESS - [0:0]
-A FORWARD -m mark --mark 0x8000/0x8000 -j ACCEPT
-A FORWARD -j BY-ADDRESS
${Array.from({ length: 14 }, (_, i) => `-A BY-ADDRESS -d 10.181.0.${i + 1}/32 -p tcp -m tcp --dport 8080 -j ACCEPT`).join('\n')}
-A BY-ADDRESS -d 10.180.0.2/32 -p tcp -m tcp --dport 8080 -j REJECT --reject-with icmp-port-unreachable
-A BY-ADDRESS -d 10.182.0.0/24 -p tcp -m tcp --dport 9090 -j DROP
-A OUTPUT -m addrtype --dst-type LOCAL -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC-A - [0:0]
:SVC-B - [0:0]
${['A1', 'A2', 'A3', 'A4', 'A5', 'B1', 'B2', 'B3'].map((n) => `:SEP-${n} - [0:0]`).join('\n')}
-A PREROUTING -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j SVC-A
-A PREROUTING -d 172.30.0.42/32 -p tcp -m tcp --dport 80 -j SVC-B
-A OUTPUT -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j SVC-A
-A SVC-A -m statistic --mode random --probability 0.2 -j SEP-A1
-A SVC-A -m statistic --mode random --probability 0.25 -j SEP-A2
-A SVC-A -m statistic --mode random --probability 0.33333333349 -j SEP-A3
-A SVC-A -m statistic --mode random --probability 0.5 -j SEP-A4
-A SVC-A -j SEP-A5
-A SEP-A1 -p tcp -m tcp -j DNAT --to-destination 10.180.0.1:8080
-A SEP-A2 -p tcp -m tcp -j DNAT --to-destination 10.180.0.2:8080
-A SEP-A3 -j MARK --or-mark 0x8000
-A SEP-A3 -p tcp -m tcp -j DNAT --to-destination 10.180.0.3:8080
-A SEP-A4 -p tcp -m tcp -j DNAT --to-destination 10.181.0.4:8080
-A SEP-A5 -p tcp -m tcp -j DNAT --to-destination 192.168.0.2:8080
-A SVC-B -m statistic --mode random --probability 0.33333333349 -j SEP-B1
-A SVC-B -m statistic --mode random --probability 0.5 -j SEP-B2
-A SVC-B -j SEP-B3
-A SEP-B1 -p tcp -m tcp -j DNAT --to-destination 10.182.0.1:9090
-A SEP-B2 -p tcp -m tcp -j DNAT --to-destination 10.183.0.1:9090
-A SEP-B3 -p tcp -m tcp -j DNAT --to-destination 10.182.0.2:9090
-A POSTROUTING -m mark --mark 0x8000/0x8000 -j MASQUERADE
COMMIT
`;

function generatedCase(): Case {
  const manifests = generateClusterManifests({ seed: 777, services: 120, endpointsPerService: 6, nodes: 4 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const vips = state.servicePorts.flatMap((sp) => [sp.info.clusterIP, ...sp.info.externalIPs, ...sp.info.loadBalancerVIPs]);
  return {
    name: 'a generated cluster', rules: compileIptablesRules(state), localAddresses: state.localAddresses,
    sources: ['10.244.1.7', '10.244.2.9', '203.0.113.5', state.nodeIPs[0]!, '127.0.0.1'],
    destinations: [...vips, ...state.localAddresses, '10.96.255.1', '10.244.1.9'],
    ports: state.servicePorts.flatMap((sp) => [sp.info.port, sp.info.nodePort].filter((p) => p !== 0)),
  };
}

const PACKETS = 500;

const cases: Case[] = [
  generatedCase(),
  fixtureCase('the overall fixture', OVERALL),
  fixtureCase('the kube-proxy packet-test fixture', TRACE_PACKET_TEST),
  fixtureCase('masquerade-all', MASQUERADE_ALL),
  { ...fixtureCase('rules that tell endpoints apart', ENDPOINT_AWARE), destinations: ['172.30.0.41', '172.30.0.42'], ports: [80] },
];

for (const c of cases) {
  test(`reused stages give the same answers: ${c.name}`, () => {
    const context = { localAddresses: c.localAddresses };
    const reusing = createTracer(c.rules, context);
    const walking = createTracer(c.rules, context, { reuseStages: false });
    const random = seededRandom(1234);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const verdicts = new Set<Verdict>();
    let compared = 0;
    for (let i = 0; i < PACKETS; i++) {
      const packet: Packet = {
        proto: random() < 0.9 ? 'tcp' : 'udp', src: pick(c.sources), dst: pick(c.destinations),
        dport: random() < 0.85 ? pick(c.ports) : 1 + Math.floor(random() * 65535),
      };
      const opts: TraceOptions = {
        ...(random() < 0.3 ? { mark: pick([0x4000, 0x8000, 0x4001, 0]) } : {}),
        ...(random() < 0.2 ? { fromNode: random() < 0.5 } : {}),
        ...(random() < 0.1 ? { ctstate: [pick(['NEW', 'ESTABLISHED', 'INVALID', 'RELATED'])] } : {}),
      };
      const a = reusing.trace(packet, opts);
      const b = walking.trace(packet, opts);
      assert.equal(JSON.stringify(a), JSON.stringify(b), `${JSON.stringify(packet)} ${JSON.stringify(opts)}`);
      verdicts.add(a.verdict);
      compared++;
    }
    assert.equal(compared, PACKETS);
    if (c.name.startsWith('rules that tell')) {
      // The endpoints do part: rejected by the index, masqueraded after a mark, dropped by a network.
      const a = reusing.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 });
      assert.deepEqual(Object.keys(a.outcomes ?? {}), ['DNAT', 'REJECT']);
      assert.deepEqual(a.masqueradeByEndpoint, { '10.180.0.1:8080': false, '10.180.0.3:8080': true, '10.181.0.4:8080': false, '192.168.0.2:8080': false });
      const b = reusing.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.42', dport: 80 });
      assert.deepEqual(b.endpoints, ['10.183.0.1:9090']);
    }
    assert.ok(verdicts.size >= 2, `the packets reach several outcomes: ${[...verdicts].join(', ')}`);
  });
}
