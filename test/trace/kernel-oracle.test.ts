/**
 * The kernel's conntrack as the oracle: kpsim's compiled rules (plus kube-proxy's jumps) are
 * loaded into a "node" network namespace wired to a client and three pods, and real TCP
 * connections are made to a ClusterIP and a NodePort, from outside, from a pod and from the node
 * itself. For every connection the node's conntrack table says where the kernel's DNAT sent it
 * (the reply tuple's source) and whether it was source-NATed (the reply tuple's destination is
 * not the client): that endpoint must be one of the tracer's endpoints for the flow (and, over
 * enough connections, every one of them is used), and the source NAT must happen exactly when
 * the tracer says that endpoint's path masquerades. The pods' own answers (which pod, and the
 * peer address it saw) must tell the same story as conntrack.
 *
 *   client 10.99.0.2 --veth-- node 10.99.0.1 / br0 10.99.1.1 --veth-- pods 10.99.1.2-4
 *
 * Needs root, iproute2, iptables-nft, conntrack and bridge netfilter; skipped with the reason
 * otherwise. Everything it starts is stopped by PID and every namespace is deleted afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { withKubeProxyJumps } from '../../src/trace/default-jumps.js';
import { createTracer } from '../../src/trace/tracer.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { clusterOf } from '../helpers/cluster-builders.js';
import { kernelSkipReason, mustInNamespace } from '../helpers/netns.js';
import { CLIENT, type Lab, type LabNamespace, NODE_UPLINK, POD_IPS, buildLab, connect, labManifests } from '../helpers/netns-lab.js';

// Each connection picks one of three endpoints at random: all three are used in 45 connections
// but for a chance of 3 * (2/3)^45, about 4e-8.
const CONNECTIONS = 45;

const skip = kernelSkipReason(['conntrack'], { bridgeNetfilter: true });

/** The lab's cluster (netns-lab.ts): one NodePort service over the three pods, all on this node. */
function ruleset(): { rules: Ruleset; localAddresses: readonly string[] } {
  const cluster = clusterOf(labManifests());
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const rules = compileIptablesRules(state, { nfacct: false, randomFully: true });
  return { rules, localAddresses: state.localAddresses };
}

function loadRules(rules: Ruleset): (nodeNs: string) => void {
  return (nodeNs) => {
    const restore = spawnSync('ip', ['netns', 'exec', nodeNs, 'iptables-restore'], { input: renderIptablesSave(withKubeProxyJumps(rules)), encoding: 'utf8' });
    if (restore.status !== 0) throw new Error(`iptables-restore: ${restore.stderr}`);
  };
}

/** One connection as the node's conntrack table recorded it. */
interface Tracked {
  client: string;
  clientPort: number;
  /** Where the kernel's DNAT sent it: the reply tuple's source. */
  endpoint: string;
  /** The address the endpoint answered to: the client, unless the connection was source-NATed. */
  replyTo: string;
}

/** The node's conntrack entries of TCP connections from `src` to `dst`:`port`. */
function conntrackEntries(lab: Lab, src: string, dst: string, port: number): Tracked[] {
  const out = mustInNamespace(lab.ns('node'), ['conntrack', '-L', '-p', 'tcp', '--orig-src', src, '--orig-dst', dst, '--orig-port-dst', String(port)]);
  return out.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const tuples = [...line.matchAll(/src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/g)];
    assert.equal(tuples.length, 2, `a conntrack entry with an original and a reply tuple: ${line}`);
    const [original, reply] = tuples as [RegExpMatchArray, RegExpMatchArray];
    return { client: `${original[1]}:${original[3]}`, clientPort: Number(original[3]), endpoint: `${reply[1]}:${reply[3]}`, replyTo: reply[2]! };
  });
}

test('the kernel\'s conntrack agrees with the tracer: DNAT and masquerade of real connections', { skip, timeout: 180_000 }, async (t) => {
  const { rules, localAddresses } = ruleset();
  const lab = await buildLab(t, 'ipto', loadRules(rules));
  const tracer = createTracer(rules, { localAddresses });

  const everyPod = POD_IPS.map((ip) => `${ip}:8080`);
  // Which endpoints' connections are source-NATed: what the test expects of both the tracer and
  // the kernel, so that a regression shared by both (no masquerading at all) fails too.
  const flows: { name: string; from: LabNamespace; src: string; dst: string; port: number; masqueraded: readonly string[] }[] = [
    { name: 'ClusterIP from outside the cluster CIDR (masqueraded)', from: 'client', src: CLIENT, dst: '10.96.0.10', port: 80, masqueraded: everyPod },
    { name: 'NodePort from outside (masqueraded)', from: 'client', src: CLIENT, dst: NODE_UPLINK, port: 30080, masqueraded: everyPod },
    { name: 'ClusterIP from a pod (masqueraded only when it reaches itself: hairpin)', from: 'pod1', src: POD_IPS[0]!, dst: '10.96.0.10', port: 80, masqueraded: [`${POD_IPS[0]}:8080`] },
    // From its uplink address, so that masquerading (to br0's address) can be seen.
    { name: 'ClusterIP from the node itself (masqueraded to the bridge address)', from: 'node', src: NODE_UPLINK, dst: '10.96.0.10', port: 80, masqueraded: everyPod },
  ];

  for (const [i, flow] of flows.entries()) {
    await t.test(flow.name, () => {
      const traced = tracer.trace({ proto: 'tcp', src: flow.src, dst: flow.dst, dport: flow.port });
      assert.equal(traced.verdict, 'DNAT');
      // Only this flow's connections in the table: it is the node namespace's own, made by this test.
      mustInNamespace(lab.ns('node'), ['conntrack', '-F']);
      // Fixed source ports: each answer is matched with its conntrack entry; the long idle timeout
      // only keeps a lost connection from hanging.
      const answers = connect(lab, flow.from, flow.dst, flow.port, CONNECTIONS, { firstPort: 20_000 + 100 * i, timeoutMs: 20_000, ...(flow.from === 'node' ? { src: flow.src } : {}) });
      const failed = answers.filter((a) => !a.endpoint.includes(':'));
      assert.deepEqual(failed, [], 'every connection answered');

      const tracked = conntrackEntries(lab, flow.src, flow.dst, flow.port);
      assert.equal(tracked.length, CONNECTIONS, `one conntrack entry per connection:\n${JSON.stringify(tracked, null, 1)}`);
      for (const entry of tracked) {
        assert.ok(traced.endpoints.includes(entry.endpoint), `conntrack DNATed ${entry.client} to ${entry.endpoint}, not one of the tracer's endpoints ${traced.endpoints.join(', ')}`);
        const snat = entry.replyTo !== flow.src;
        assert.equal(snat, traced.masqueradeByEndpoint[entry.endpoint],
          `conntrack: ${entry.client} -> ${entry.endpoint} answered to ${entry.replyTo} (source NAT: ${snat}); the tracer says masquerade=${traced.masqueradeByEndpoint[entry.endpoint]}`);
      }
      const used = [...new Set(tracked.map((e) => e.endpoint))].sort();
      assert.deepEqual(used, traced.endpoints, `endpoints conntrack used in ${CONNECTIONS} connections vs the tracer's endpoints`);
      const masqueraded = [...new Set(tracked.filter((e) => e.replyTo !== flow.src).map((e) => e.endpoint))].sort();
      assert.deepEqual(masqueraded, [...flow.masqueraded].sort(), 'endpoints whose connections conntrack shows source-NATed');

      // Connection by connection, the pods saw the same: which of them answered, and from which address.
      const fromConntrack = tracked.map((e) => `${e.clientPort} ${e.endpoint} ${e.replyTo}`).sort();
      const fromPods = answers.map((a) => `${a.clientPort} ${a.endpoint} ${a.peer}`).sort();
      assert.deepEqual(fromPods, fromConntrack, 'per client port: the answering pod and the peer address it saw vs conntrack\'s reply tuple');
    });
  }
});
