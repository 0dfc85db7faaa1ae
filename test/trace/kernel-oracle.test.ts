/**
 * Real traffic as the oracle: kpsim's compiled rules (plus kube-proxy's jumps) are loaded into
 * a "node" network namespace wired to a client and three pods, real TCP connections are made,
 * and each pod reports which of them answered and what source address it saw. The tracer's
 * answer for the same flow must agree: every pod that answered is one of its endpoints (and,
 * over enough connections, every endpoint answers), and the pod sees the node's address
 * exactly when the tracer says that endpoint's path masquerades.
 *
 *   client 10.99.0.2 --veth-- node 10.99.0.1 / br0 10.99.1.1 --veth-- pods 10.99.1.2-4
 *
 * Needs root, `ip`, iptables-nft and bridge netfilter; skipped with the reason otherwise.
 * Everything it starts is stopped by PID and every namespace is deleted afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { withKubeProxyJumps } from '../../src/trace/default-jumps.js';
import { createTracer } from '../../src/trace/tracer.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { clusterOf } from '../helpers/cluster-builders.js';
import { CLIENT, type LabNamespace, NODE_UPLINK, POD_IPS, buildLab, connect, labManifests } from '../helpers/netns-lab.js';

const CONNECTIONS = 30;

function why(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and iptables)';
  const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!has('ip')) return 'needs iproute2 (ip)';
  const restore = has('iptables-nft-restore') ? 'iptables-nft-restore' : 'iptables-restore';
  if (!has(restore)) return 'needs iptables';
  if (!existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) return 'needs bridge netfilter (br_netfilter)';
  return false;
}

const skip = why();

/** The cluster: one NodePort service over the three pods, all on this node. */
function ruleset(): { rules: Ruleset; localAddresses: readonly string[] } {
  const cluster = clusterOf(labManifests());
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const rules = compileIptablesRules(state, { nfacct: false, randomFully: true });
  return { rules, localAddresses: state.localAddresses };
}

test('real traffic agrees with the tracer', { skip, timeout: 60_000 }, async (t) => {
  const { rules, localAddresses } = ruleset();
  const lab = await buildLab(t, 'o', (node) => {
    const restore = spawnSync('ip', ['netns', 'exec', node, 'iptables-restore'], { input: renderIptablesSave(withKubeProxyJumps(rules)), encoding: 'utf8' });
    if (restore.status !== 0) throw new Error(`iptables-restore: ${restore.stderr}`);
  });
  const tracer = createTracer(rules, { localAddresses });

  const flows: { name: string; from: LabNamespace; src: string; dst: string; port: number }[] = [
    { name: 'outside client to the cluster IP', from: 'client', src: CLIENT, dst: '10.96.0.10', port: 80 },
    { name: 'outside client to the node port', from: 'client', src: CLIENT, dst: NODE_UPLINK, port: 30080 },
    { name: 'a pod to its own service (hairpin on one path)', from: 'pod1', src: POD_IPS[0]!, dst: '10.96.0.10', port: 80 },
    // From its uplink address, so that masquerading (to br0's address) can be seen.
    { name: 'the node itself to the cluster IP', from: 'node', src: NODE_UPLINK, dst: '10.96.0.10', port: 80 },
  ];

  for (const flow of flows) {
    await t.test(flow.name, () => {
      const traced = tracer.trace({ proto: 'tcp', src: flow.src, dst: flow.dst, dport: flow.port });
      const answers = connect(lab, flow.from, flow.dst, flow.port, CONNECTIONS, flow.from === 'node' ? { src: flow.src } : {});
      const failed = answers.filter((a) => !a.endpoint.includes(':'));
      assert.deepEqual(failed, [], 'every connection answered');
      const seen = [...new Set(answers.map((a) => a.endpoint))].sort();
      assert.equal(traced.verdict, 'DNAT');
      assert.deepEqual(seen, traced.endpoints, `pods that answered vs the tracer's endpoints`);
      for (const answer of answers) {
        const masqueraded = answer.peer !== flow.src;
        assert.equal(masqueraded, traced.masqueradeByEndpoint[answer.endpoint],
          `${answer.endpoint} saw ${answer.peer}; the tracer says masquerade=${traced.masqueradeByEndpoint[answer.endpoint]}`);
      }
    });
  }
});
