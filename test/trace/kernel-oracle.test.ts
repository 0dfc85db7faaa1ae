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
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { withKubeProxyJumps } from '../../src/trace/default-jumps.js';
import { createTracer } from '../../src/trace/tracer.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { clusterOf, ep, makeNode, makeProxyConfig, makeService, makeSlice } from '../helpers/cluster-builders.js';

const CONNECTIONS = 30;
const POD_IPS = ['10.99.1.2', '10.99.1.3', '10.99.1.4'];
const NODE_UPLINK = '10.99.0.1';
const NODE_BRIDGE = '10.99.1.1';
const CLIENT = '10.99.0.2';

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
  const cluster = clusterOf([
    makeNode('node-a', [NODE_UPLINK, NODE_BRIDGE]),
    makeProxyConfig((c) => {
      c.clusterCIDR = '10.99.1.0/24';
      c.hostnameOverride = 'node-a';
    }),
    makeService('default', 'web', (s) => {
      s.spec.type = 'NodePort';
      s.spec.clusterIP = '10.96.0.10';
      s.spec.ports = [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }];
    }),
    makeSlice('default', 'web', 1, (eps) => {
      eps.endpoints = POD_IPS.map((ip) => ep(ip, 'node-a'));
      eps.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }];
    }),
  ]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const rules = compileIptablesRules(state, { nfacct: false, randomFully: true });
  return { rules, localAddresses: state.localAddresses };
}

const RESPONDER = `
const net = require('node:net');
const [name, addr] = process.argv.slice(1);
net.createServer((s) => { s.end(name + ' ' + s.remoteAddress + '\\n'); }).listen(8080, addr, () => console.log('ready'));
`;

const CLIENT_PROGRAM = `
const net = require('node:net');
const [dst, port, count, src] = process.argv.slice(1);
const seen = [];
(async () => {
  for (let i = 0; i < Number(count); i++) {
    const line = await new Promise((resolve) => {
      const s = net.connect({ host: dst, port: Number(port), localAddress: src || undefined, timeout: 2000 });
      let data = '';
      s.on('data', (d) => { data += d; });
      s.on('end', () => resolve(data.trim()));
      s.on('timeout', () => { s.destroy(); resolve('timeout'); });
      s.on('error', (e) => resolve('error ' + e.code));
    });
    seen.push(line);
  }
  console.log(JSON.stringify(seen));
})();
`;

interface Lab {
  ns: (name: 'client' | 'node' | 'pod1' | 'pod2' | 'pod3') => string;
}

function sh(args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

async function buildLab(t: TestContext, rules: Ruleset): Promise<Lab> {
  const prefix = `kpsim-test-${process.pid}-o`;
  const names = ['client', 'node', 'pod1', 'pod2', 'pod3'] as const;
  const ns = (name: (typeof names)[number]): string => `${prefix}-${name}`;
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const child of children) child.kill('SIGKILL');
    for (const name of names) spawnSync('ip', ['netns', 'del', ns(name)]);
  });
  for (const name of names) sh(['ip', 'netns', 'add', ns(name)]);
  const inNs = (name: (typeof names)[number], ...cmd: string[]): void => sh(['ip', '-n', ns(name), ...cmd]);

  sh(['ip', 'link', 'add', 'c0', 'netns', ns('client'), 'type', 'veth', 'peer', 'name', 'n0', 'netns', ns('node')]);
  inNs('client', 'addr', 'add', `${CLIENT}/24`, 'dev', 'c0');
  inNs('client', 'link', 'set', 'c0', 'up');
  inNs('client', 'link', 'set', 'lo', 'up');
  inNs('client', 'route', 'add', 'default', 'via', NODE_UPLINK);
  inNs('node', 'addr', 'add', `${NODE_UPLINK}/24`, 'dev', 'n0');
  inNs('node', 'link', 'set', 'n0', 'up');
  inNs('node', 'link', 'set', 'lo', 'up');
  inNs('node', 'link', 'add', 'br0', 'type', 'bridge');
  inNs('node', 'addr', 'add', `${NODE_BRIDGE}/24`, 'dev', 'br0');
  inNs('node', 'link', 'set', 'br0', 'up');
  // Service addresses are routed like any off-node address (nat OUTPUT rewrites them first).
  inNs('node', 'route', 'add', 'default', 'via', CLIENT);
  sh(['ip', 'netns', 'exec', ns('node'), 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [i, pod] of (['pod1', 'pod2', 'pod3'] as const).entries()) {
    sh(['ip', 'link', 'add', 'eth0', 'netns', ns(pod), 'type', 'veth', 'peer', 'name', `vp${i}`, 'netns', ns('node')]);
    inNs('node', 'link', 'set', `vp${i}`, 'master', 'br0');
    inNs('node', 'link', 'set', `vp${i}`, 'up');
    // A pod reaching its own service comes back through its own bridge port (kubelet sets this).
    inNs('node', 'link', 'set', `vp${i}`, 'type', 'bridge_slave', 'hairpin', 'on');
    inNs(pod, 'addr', 'add', `${POD_IPS[i]}/24`, 'dev', 'eth0');
    inNs(pod, 'link', 'set', 'eth0', 'up');
    inNs(pod, 'link', 'set', 'lo', 'up');
    inNs(pod, 'route', 'add', 'default', 'via', NODE_BRIDGE);
  }
  const restore = spawnSync('ip', ['netns', 'exec', ns('node'), 'iptables-restore'], { input: renderIptablesSave(withKubeProxyJumps(rules)), encoding: 'utf8' });
  if (restore.status !== 0) throw new Error(`iptables-restore: ${restore.stderr}`);

  await Promise.all((['pod1', 'pod2', 'pod3'] as const).map((pod, i) => new Promise<void>((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns(pod), process.execPath, '-e', RESPONDER, `${POD_IPS[i]}:8080`, POD_IPS[i]!]);
    children.push(child);
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`responder in ${pod} exited with ${code}`)));
  })));
  return { ns };
}

/** Make `count` connections from a namespace; each answer is "endpoint peer-address". */
function connect(lab: Lab, from: Parameters<Lab['ns']>[0], dst: string, port: number, count: number, src = ''): { endpoint: string; peer: string }[] {
  const r = spawnSync('ip', ['netns', 'exec', lab.ns(from), process.execPath, '-e', CLIENT_PROGRAM, dst, String(port), String(count), src], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = JSON.parse(r.stdout) as string[];
  return lines.map((line) => {
    const [endpoint, peer] = line.split(' ');
    return { endpoint: endpoint!, peer: peer ?? '' };
  });
}

test('real traffic agrees with the tracer', { skip, timeout: 60_000 }, async (t) => {
  const { rules, localAddresses } = ruleset();
  const lab = await buildLab(t, rules);
  const tracer = createTracer(rules, { localAddresses });

  const flows: { name: string; from: Parameters<Lab['ns']>[0]; src: string; dst: string; port: number }[] = [
    { name: 'outside client to the cluster IP', from: 'client', src: CLIENT, dst: '10.96.0.10', port: 80 },
    { name: 'outside client to the node port', from: 'client', src: CLIENT, dst: NODE_UPLINK, port: 30080 },
    { name: 'a pod to its own service (hairpin on one path)', from: 'pod1', src: POD_IPS[0]!, dst: '10.96.0.10', port: 80 },
    // From its uplink address, so that masquerading (to br0's address) can be seen.
    { name: 'the node itself to the cluster IP', from: 'node', src: NODE_UPLINK, dst: '10.96.0.10', port: 80 },
  ];

  for (const flow of flows) {
    await t.test(flow.name, () => {
      const traced = tracer.trace({ proto: 'tcp', src: flow.src, dst: flow.dst, dport: flow.port });
      const answers = connect(lab, flow.from, flow.dst, flow.port, CONNECTIONS, flow.from === 'node' ? flow.src : '');
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
