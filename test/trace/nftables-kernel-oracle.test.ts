/**
 * Real traffic as the oracle for nftables mode: kpsim's compiled `kube-proxy` table is loaded
 * with `nft -f` into a "node" namespace wired to a client and three pods (netns-lab.ts), real
 * TCP connections are made, and
 *   - every pod that answered is one of the tracer's endpoints, and over enough connections
 *     every endpoint answers;
 *   - the pod sees the node's address exactly when the tracer says that endpoint's path
 *     masquerades;
 *   - the kernel's DNAT choices, read from conntrack in the node namespace (the reply's
 *     source), lie inside the tracer's endpoint set;
 *   - REJECT (a service without endpoints, a port no service defines) is a refused
 *     connection, and DROP (an unallocated address of the service CIDR) a timeout.
 *
 * Needs root, `ip`, `nft` and `conntrack`; skipped with the reason otherwise. Everything it
 * starts is stopped by PID and every namespace is deleted afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import type { NftRuleset } from '../../src/nftables/types.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { clusterOf, makeService } from '../helpers/cluster-builders.js';
import { CLIENT, type LabNamespace, NODE_UPLINK, POD_IPS, buildLab, connect, labManifests, labUnavailable, sh } from '../helpers/netns-lab.js';

const CONNECTIONS = 30;
const CLUSTER_IP = '10.96.0.10';
const EMPTY_CLUSTER_IP = '10.96.0.20';
const UNALLOCATED = '10.96.0.99';
const skip = labUnavailable(['nft', 'conntrack']);

/** A NodePort service over the three pods, all on this node, and a service without endpoints. */
function ruleset(): { rules: NftRuleset; localAddresses: readonly string[] } {
  const cluster = clusterOf([
    ...labManifests(),
    makeService('default', 'empty', (s) => {
      s.spec.clusterIP = EMPTY_CLUSTER_IP;
      s.spec.ports = [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }];
    }),
  ]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  return { rules: compileNftablesRules(state, { serviceCIDRs: ['10.96.0.0/16'] }), localAddresses: state.localAddresses };
}

/** The DNAT targets of the node's conntrack entries towards dst:port: each entry's reply source. */
function conntrackTargets(nodeNs: string, dst: string, port: number): string[] {
  const out = sh(['ip', 'netns', 'exec', nodeNs, 'conntrack', '-L', '-p', 'tcp', '--orig-dst', dst, '--orig-port-dst', String(port)]);
  const targets: string[] = [];
  for (const line of out.split('\n')) {
    const srcs = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1]!);
    const sports = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => m[1]!);
    if (srcs.length >= 2 && sports.length >= 2) targets.push(`${srcs[1]}:${sports[1]}`);
  }
  return targets;
}

test('real traffic through nftables mode agrees with the tracer', { skip, timeout: 120_000 }, async (t) => {
  const { rules, localAddresses } = ruleset();
  const lab = await buildLab(t, 'nfto', (node) => {
    sh(['ip', 'netns', 'exec', node, 'nft', '-f', '-'], renderNftScript(rules));
  });
  const tracer = createNftTracer(rules, { localAddresses });

  const flows: { name: string; from: LabNamespace; src: string; dst: string; port: number }[] = [
    { name: 'outside client to the cluster IP', from: 'client', src: CLIENT, dst: CLUSTER_IP, port: 80 },
    { name: 'outside client to the node port', from: 'client', src: CLIENT, dst: NODE_UPLINK, port: 30080 },
    { name: 'a pod to its own service (hairpin on one path)', from: 'pod1', src: POD_IPS[0]!, dst: CLUSTER_IP, port: 80 },
    // From its uplink address, so that masquerading (to br0's address) can be seen.
    { name: 'the node itself to the cluster IP', from: 'node', src: NODE_UPLINK, dst: CLUSTER_IP, port: 80 },
  ];
  for (const flow of flows) {
    await t.test(flow.name, () => {
      const traced = tracer.trace({ proto: 'tcp', src: flow.src, dst: flow.dst, dport: flow.port });
      const before = new Set(conntrackTargets(lab.ns('node'), flow.dst, flow.port));
      const answers = connect(lab, flow.from, flow.dst, flow.port, CONNECTIONS, flow.from === 'node' ? { src: flow.src } : {});
      assert.deepEqual(answers.filter((a) => !a.endpoint.includes(':')), [], 'every connection answered');
      assert.equal(traced.verdict, 'DNAT');
      const seen = [...new Set(answers.map((a) => a.endpoint))].sort();
      assert.deepEqual(seen, traced.endpoints, 'pods that answered vs the tracer\'s endpoints');
      for (const answer of answers) {
        assert.equal(answer.peer !== flow.src, traced.masqueradeByEndpoint[answer.endpoint],
          `${answer.endpoint} saw ${answer.peer}; the tracer says masquerade=${traced.masqueradeByEndpoint[answer.endpoint]}`);
      }
      const chosen = conntrackTargets(lab.ns('node'), flow.dst, flow.port);
      assert.ok(chosen.length > before.size, `conntrack shows the new connections (${chosen.length} entries)`);
      for (const target of chosen) assert.ok(traced.endpoints.includes(target), `conntrack's DNAT target ${target} is not among ${traced.endpoints.join(', ')}`);
    });
  }

  // From a pod: the node answers a rejected forwarded packet with an ICMP error, and (measured
  // on kernel 6.18) sends none when the route to the rejected destination points back out of
  // the interface the packet came in on, as it does for the client here (its default route).
  const refusals: { name: string; dst: string; port: number; verdict: string; answer: RegExp }[] = [
    { name: 'a service without endpoints is rejected', dst: EMPTY_CLUSTER_IP, port: 80, verdict: 'REJECT', answer: /^error ECONNREFUSED$/ },
    { name: 'a port no service defines on a cluster IP is rejected', dst: CLUSTER_IP, port: 81, verdict: 'REJECT', answer: /^error ECONNREFUSED$/ },
    { name: 'an unallocated address of the service CIDR is dropped', dst: UNALLOCATED, port: 80, verdict: 'DROP', answer: /^timeout$/ },
  ];
  for (const r of refusals) {
    await t.test(r.name, () => {
      assert.equal(tracer.trace({ proto: 'tcp', src: POD_IPS[1]!, dst: r.dst, dport: r.port }).verdict, r.verdict);
      const [answer] = connect(lab, 'pod2', r.dst, r.port, 1, { timeoutMs: 1500 });
      assert.match(answer!.endpoint, r.answer);
    });
  }
});
