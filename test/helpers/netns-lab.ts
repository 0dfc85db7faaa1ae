/**
 * A small node in network namespaces for real-traffic tests: a client, a "node" that routes
 * and runs the rules under test, and three pods on a bridge behind it, each answering TCP
 * connections with its own address and the peer address it saw.
 *
 *   client 10.99.0.2 --veth-- node 10.99.0.1 / br0 10.99.1.1 --veth-- pods 10.99.1.2-4
 *
 * Namespaces are named kpsim-test-<pid>-<n>-<tag>-... (helpers/netns.ts); everything started is
 * stopped by PID and every namespace deleted when the test ends.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { type Manifest, ep, makeNode, makeProxyConfig, makeService, makeSlice } from './cluster-builders.js';
import { createNamespace } from './netns.js';

export const POD_IPS = ['10.99.1.2', '10.99.1.3', '10.99.1.4'];
export const NODE_UPLINK = '10.99.0.1';
export const NODE_BRIDGE = '10.99.1.1';
export const CLIENT = '10.99.0.2';

/** The lab's cluster: node-a (both node addresses), pod CIDR 10.99.1.0/24, service web (NodePort 30080) over the three pods. */
export function labManifests(): Manifest[] {
  return [
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
  ];
}

export type LabNamespace = 'client' | 'node' | 'pod1' | 'pod2' | 'pod3';

export interface Lab {
  ns(name: LabNamespace): string;
}

const RESPONDER = `
const net = require('node:net');
const [name, addr] = process.argv.slice(1);
net.createServer((s) => { s.end(name + ' ' + s.remoteAddress + '\\n'); }).listen(8080, addr, () => console.log('ready'));
`;

// With firstPort, connection i leaves from source port firstPort + i: no two connections share
// a conntrack tuple (a reused one would replace the entry of an earlier connection), and each
// answer can be matched with its conntrack entry. Every answer starts with the source port used.
const CLIENT_PROGRAM = `
const net = require('node:net');
const [dst, port, count, src, timeout, firstPort] = process.argv.slice(1);
const seen = [];
(async () => {
  for (let i = 0; i < Number(count); i++) {
    const localPort = firstPort ? Number(firstPort) + i : undefined;
    const line = await new Promise((resolve) => {
      const s = net.connect({ host: dst, port: Number(port), localAddress: src || undefined, localPort, timeout: Number(timeout) });
      let data = '';
      const answer = (text) => resolve((s.localPort ?? localPort ?? 0) + ' ' + text);
      s.on('data', (d) => { data += d; });
      s.on('end', () => answer(data.trim()));
      s.on('timeout', () => { s.destroy(); answer('timeout'); });
      s.on('error', (e) => answer('error ' + e.code));
    });
    seen.push(line);
  }
  console.log(JSON.stringify(seen));
})();
`;

export function sh(args: string[], input?: string): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Why the lab cannot run here, or false. */
export function labUnavailable(tools: readonly string[]): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  for (const tool of ['ip', ...tools]) if (!has(tool)) return `needs ${tool}`;
  return false;
}

/**
 * The lab's links, addresses and routes in namespaces already made: the client behind the
 * node's uplink, the node forwarding, the three pods on the node's bridge (hairpin ports).
 */
export function wireLab(ns: (name: LabNamespace) => string): void {
  const inNs = (name: LabNamespace, ...cmd: string[]): void => {
    sh(['ip', '-n', ns(name), ...cmd]);
  };
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
  // Service addresses are routed like any off-node address (nat output rewrites them first).
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
}

/**
 * Build the topology, let `load` install the rules in the node namespace, start the pods'
 * responders.
 */
export async function buildLab(t: TestContext, tag: string, load: (nodeNs: string) => void): Promise<Lab> {
  const names = ['client', 'node', 'pod1', 'pod2', 'pod3'] as const;
  const children: ChildProcess[] = [];
  // Added before the namespaces' clean-ups, and after hooks run in the order they were added:
  // the responders are killed (by PID) before their namespaces are deleted.
  t.after(() => {
    for (const child of children) child.kill('SIGKILL');
  });
  const created = new Map(names.map((name) => [name, createNamespace(t, `${tag}-${name}`)]));
  const ns = (name: LabNamespace): string => created.get(name)!;
  wireLab(ns);
  load(ns('node'));

  await Promise.all((['pod1', 'pod2', 'pod3'] as const).map((pod, i) => new Promise<void>((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns(pod), process.execPath, '-e', RESPONDER, `${POD_IPS[i]}:8080`, POD_IPS[i]!]);
    children.push(child);
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`responder in ${pod} exited with ${code}`)));
  })));
  return { ns };
}

export interface Answer {
  /** The client's source port of this connection. */
  readonly clientPort: number;
  /** "ip:port" of the pod that answered; or "timeout", "error ECONNREFUSED", ... */
  readonly endpoint: string;
  /** The source address the pod saw. */
  readonly peer: string;
}

export interface ConnectOptions {
  /** Source address to bind (a node's own address, say). */
  readonly src?: string;
  /** Idle timeout per connection (default 2 s). */
  readonly timeoutMs?: number;
  /** Connection i leaves from source port firstPort + i (default: ports the kernel picks). */
  readonly firstPort?: number;
}

/** Make `count` connections from a namespace, one after the other. */
export function connect(lab: Lab, from: LabNamespace, dst: string, port: number, count: number, opts: ConnectOptions = {}): Answer[] {
  const args = [dst, String(port), String(count), opts.src ?? '', String(opts.timeoutMs ?? 2000), opts.firstPort === undefined ? '' : String(opts.firstPort)];
  const r = spawnSync('ip', ['netns', 'exec', lab.ns(from), process.execPath, '-e', CLIENT_PROGRAM, ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = JSON.parse(r.stdout) as string[];
  return lines.map((line) => {
    const space = line.indexOf(' ');
    const clientPort = Number(line.slice(0, space));
    const text = line.slice(space + 1);
    if (text.startsWith('error ')) return { clientPort, endpoint: text, peer: '' };
    const [endpoint, peer] = text.split(' ');
    return { clientPort, endpoint: endpoint!, peer: peer ?? '' };
  });
}
