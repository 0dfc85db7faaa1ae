/**
 * The lab's topology, planned (pure): where each endpoint's pod goes, which addresses and routes
 * each namespace gets, and the settings that make a kernel behave as a kube-proxy node does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLab, namespaceOf } from '../../src/lab/plan.js';
import { nodeSysctls, topologyCommands } from '../../src/lab/topology.js';
import { loadCluster } from '../../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

async function example(): Promise<{ node: ReturnType<typeof resolveNode>; states: ReturnType<typeof buildProxierStates> }> {
  const cluster = await loadCluster(['rules/example']);
  const node = resolveNode(cluster);
  return { node, states: buildProxierStates(cluster, node) };
}

test('every endpoint the rules can reach gets a place: local pods, remote pods, the node itself', async () => {
  const { node, states } = await example();
  const plan = planLab(node, states, { prefix: 'p' });
  const where = (ip: string): string | undefined => plan.pods.find((p) => p.ips.includes(ip))?.placement;
  const cases: [string, string | undefined][] = [
    ['10.244.0.5', 'local'], // web on node-a
    ['10.244.1.6', 'remote'], // web on node-b
    ['192.168.0.2', 'host'], // the API server at the node's own address
  ];
  for (const [ip, want] of cases) assert.equal(where(ip), want, `${ip}: ${JSON.stringify(plan.pods.map((p) => [p.ns, p.ips, p.placement]))}`);
  // A dual-stack pod is one namespace with both its addresses.
  const dual = plan.pods.find((p) => p.podName === 'dual-0');
  assert.deepEqual(dual?.ips, ['10.244.0.14', 'fd00:10:244::14']);
  // Every pod namespace is its own; host endpoints live in the node's.
  assert.equal(new Set(plan.pods.filter((p) => p.placement !== 'host').map((p) => p.ns)).size, plan.pods.filter((p) => p.placement !== 'host').length);
  assert.equal(plan.pods.find((p) => p.placement === 'host')?.ns, plan.names.node);
  assert.equal(namespaceOf(plan, '10.244.1.6'), plan.pods.find((p) => p.ips.includes('10.244.1.6'))!.ns);
  assert.equal(namespaceOf(plan, '100.64.0.1'), plan.names.client);
  assert.equal(namespaceOf(plan, '127.0.0.1'), plan.names.node);
});

test('the pod gateway is the podCIDR\'s first free host; the fabric address the node\'s own', async () => {
  const { node, states } = await example();
  const plan = planLab(node, states, { prefix: 'p' });
  assert.deepEqual(plan.podGateways, { 4: '10.244.0.1', 6: 'fd00:10:244::1' });
  assert.deepEqual(plan.fabricAddresses, { 4: '192.168.0.2', 6: '2001:db8::2' });
  const taken = planLab(node, states, { prefix: 'p', clientSources: ['10.244.0.1'] });
  assert.equal(taken.podGateways[4], '10.244.0.3', 'a client source at the first host moves the gateway along (10.244.0.2 is a pod)');
});

test('placeEndpoint leaves the others out', async () => {
  const { node, states } = await example();
  const plan = planLab(node, states, { prefix: 'p', placeEndpoint: (ip) => ip === '10.244.0.5' });
  assert.deepEqual(plan.pods.map((p) => p.ips), [['10.244.0.5']]);
});

test('commands: hairpin on every pod port, bridges without forwarding delay, client sources behind one neighbour', async () => {
  const { node, states } = await example();
  const plan = planLab(node, states, { prefix: 'p', clientSources: ['100.64.0.16', '100.64.0.17', '2001:db8:c11e::10'] });
  const commands = topologyCommands(plan);
  const nodeLines = commands.perNamespace.get('p-node')!;
  const ports = plan.pods.filter((p) => p.placement !== 'host').map((p) => p.hostInterface!);
  for (const port of ports) assert.ok(nodeLines.includes(`link set ${port} type bridge_slave hairpin on`), `${port}: ${nodeLines.join('\n')}`);
  assert.ok(nodeLines.includes('link add cbr0 type bridge forward_delay 0 stp_state 0'));
  assert.ok(nodeLines.includes('route add 100.64.0.16/32 dev eth0'));
  assert.ok(nodeLines.includes('route add 100.64.0.17/32 via 100.64.0.16 dev eth0'));
  assert.ok(nodeLines.includes('route add 2001:db8:c11e::10/128 via fe80::2 dev eth0'));
  // IPv6: fixed link-local addresses (neighbour discovery needs one) without duplicate address detection.
  assert.ok(commands.perNamespace.get('p-client')!.includes('addr add fe80::2/64 dev eth0 nodad'));
  assert.ok(commands.host.includes('netns add p-node') && commands.host.includes(`link add eth0 netns p-ep-1 type veth peer name p1 netns p-node`));
  assert.ok(commands.perNamespace.get('p-ep-1')!.includes('route add default via 10.244.0.1'));
});

test('the node forwards, sends bridged traffic through netfilter and no ICMP redirects', () => {
  assert.deepEqual(nodeSysctls([4]).filter((s) => /forward|bridge-nf-call-iptables|send_redirects/.test(s)), [
    'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0', 'net.bridge.bridge-nf-call-iptables=1',
  ]);
  assert.ok(nodeSysctls([4, 6]).includes('net.ipv6.conf.all.forwarding=1'));
  assert.ok(!nodeSysctls([4]).some((s) => s.includes('ipv6')));
});
