/**
 * The loopback address map: which virtual addresses a node serves, where each lands on
 * loopback, IPv6's single loopback address, ports that cannot be kept, and the printed map.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressMap, entryKey, planAddressMap } from '../../src/proxy/address-map.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import {
  TEST_NODE_NAME, clusterOf, ep, fixtureConfig, makeNode, makeService, makeSlice, tcpPort,
} from '../helpers/cluster-builders.js';
import { stateOf, webService } from './helpers.js';

function exampleStates() {
  const manifests = [
    makeNode(TEST_NODE_NAME, ['192.168.0.2', '2001:db8::2']),
    fixtureConfig(),
    makeService('ns1', 'web', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.clusterIP = '172.30.0.41';
      s.spec.externalIPs = ['192.0.2.10'];
      s.spec.ports = [tcpPort('http', 80, { nodePort: 30080, targetPort: 8080 }), { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }];
    }),
    makeSlice('ns1', 'web', 1, (eps) => {
      eps.endpoints = [ep('10.180.0.2', TEST_NODE_NAME), ep('10.180.0.1', 'other-node')];
      eps.endpoints[0]!.targetRef = { kind: 'Pod', namespace: 'ns1', name: 'web-b' };
      eps.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }];
    }),
    makeService('ns1', 'v6a', (s) => {
      s.spec.clusterIP = 'fd00:30::a';
      s.spec.ipFamilies = ['IPv6'];
      s.spec.ports = [tcpPort('http', 80)];
    }),
    makeService('ns1', 'v6b', (s) => {
      s.spec.clusterIP = 'fd00:30::b';
      s.spec.ipFamilies = ['IPv6'];
      s.spec.ports = [tcpPort('http', 80)];
    }),
  ];
  const cluster = clusterOf(manifests);
  cluster.services.find((s) => s.name === 'web')!.loadBalancerIngress = [{ ip: '203.0.113.50', ipMode: 'VIP' }];
  return buildProxierStates(cluster, resolveNode(cluster));
}

const lookups: { name: string; query: Parameters<AddressMap['lookup']>[0]; want: string | undefined }[] = [
  { name: 'ClusterIP', query: { kind: 'ClusterIP', address: '172.30.0.41', port: 80 }, want: '127.10.0.1:80' },
  { name: 'NodePort on the node IP keeps its port', query: { kind: 'NodePort', address: '192.168.0.2', port: 30080 }, want: '127.30.0.1:30080' },
  { name: 'externalIP', query: { kind: 'ExternalIP', address: '192.0.2.10', port: 80 }, want: '127.40.0.1:80' },
  { name: 'LoadBalancer ingress IP', query: { kind: 'LoadBalancer', address: '203.0.113.50', port: 80 }, want: '127.50.0.1:80' },
  { name: 'kind left out finds the ClusterIP', query: { address: '172.30.0.41', port: 80 }, want: '127.10.0.1:80' },
  { name: 'address in another text form', query: { kind: 'ClusterIP', address: '172.030.0.41', port: 80 }, want: '127.10.0.1:80' },
  { name: 'the first IPv6 service keeps port 80 on ::1', query: { kind: 'ClusterIP', address: 'fd00:30::a', port: 80 }, want: '[::1]:80' },
  { name: 'the second IPv6 service on port 80 falls back to ephemeral', query: { kind: 'ClusterIP', address: 'fd00:30::b', port: 80 }, want: '[::1]:0' },
  { name: 'a port the service does not have', query: { kind: 'ClusterIP', address: '172.30.0.41', port: 81 }, want: undefined },
  { name: 'a NodePort on a node IP of the other family', query: { kind: 'NodePort', address: '2001:db8::2', port: 30080 }, want: undefined },
  { name: 'not an address', query: { address: 'web', port: 80 }, want: undefined },
];

for (const c of lookups) {
  test(`lookup: ${c.name}`, () => {
    const map = planAddressMap(exampleStates());
    const entry = map.lookup(c.query);
    const got = entry === undefined ? undefined : `${entry.loopback.address.includes(':') ? `[${entry.loopback.address}]` : entry.loopback.address}:${entry.loopback.port}`;
    assert.equal(got, c.want, map.render());
  });
}

test('UDP ports are proxied on the same loopback IP, their port number kept beside TCP ports', () => {
  const map = planAddressMap(exampleStates());
  const udp = map.lookup({ kind: 'ClusterIP', address: '172.30.0.41', port: 53, protocol: 'UDP' });
  assert.ok(udp);
  assert.equal(udp.proxied, true);
  assert.deepEqual(udp.loopback, { address: '127.10.0.1', port: 53 });
  assert.match(map.render(), /ClusterIP +172\.30\.0\.41:53\/UDP +-> +127\.10\.0\.1:53 +ns1\/web:dns/);
});

test('a TCP and a UDP port of one number both keep it: they are separate port spaces', () => {
  const manifests = [
    fixtureConfig(),
    makeService('kube-system', 'dns', (s) => {
      s.spec.clusterIP = '172.30.0.10';
      s.spec.ports = [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, tcpPort('dns-tcp', 53)];
    }),
    makeSlice('kube-system', 'dns', 1, (eps) => {
      eps.endpoints = [ep('10.180.0.5', TEST_NODE_NAME)];
      eps.ports = [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }];
    }),
  ];
  const map = planAddressMap(stateOf(manifests));
  for (const protocol of ['TCP', 'UDP'] as const) {
    const entry = map.lookup({ address: '172.30.0.10', port: 53, protocol });
    assert.deepEqual([entry?.loopback, entry?.fallback], [{ address: '127.10.0.1', port: 53 }, undefined], `${protocol}\n${map.render()}`);
  }
  const backend = map.lookupBackend('10.180.0.5:53')!;
  assert.deepEqual([backend.protocols, backend.loopback, backend.udpLoopback], [['TCP', 'UDP'], { address: '127.1.0.1', port: 53 }, { address: '127.1.0.1', port: 53 }]);
  assert.deepEqual([map.backendAddress('10.180.0.5:53', 'UDP'), map.backendAddress('10.180.0.5:53', 'TCP')], [backend.udpLoopback, backend.loopback]);
  assert.match(map.render(), /^Backend +10\.180\.0\.5:53 +-> +127\.1\.0\.1:53 \(tcp, udp\)/m);
});

test('SCTP ports stay in the map, not proxied', () => {
  const manifests = [
    fixtureConfig(),
    makeService('ns1', 'sig', (s) => {
      s.spec.clusterIP = '172.30.0.60';
      s.spec.ports = [{ name: 'sctp', port: 3868, protocol: 'SCTP', targetPort: 3868 }];
    }),
  ];
  const map = planAddressMap(stateOf(manifests));
  const entry = map.lookup({ address: '172.30.0.60', port: 3868, protocol: 'SCTP' });
  assert.deepEqual([entry?.proxied, entry?.loopback.port], [false, 0]);
  assert.match(map.render(), /not proxied \(SCTP ports are not proxied\)/);
});

test('the second IPv6 entry says why it has no port of its own', () => {
  const map = planAddressMap(exampleStates());
  const b = map.lookup({ address: 'fd00:30::b', port: 80 })!;
  assert.equal(b.fallback, `port 80 on ::1 is taken by ${entryKey('ClusterIP', { address: 'fd00:30::a', port: 80 }, 'TCP')}`);
});

test('backends: one loopback IP per pod IP in address order, ports kept, pod names shown', () => {
  const map = planAddressMap(exampleStates());
  assert.deepEqual(map.backends.map((b) => [b.endpoint, `${b.loopback.address}:${b.loopback.port}`, b.podName ?? '', b.protocols.join()]), [
    ['10.180.0.1:53', '127.1.0.1:53', '', 'UDP'],
    ['10.180.0.1:8080', '127.1.0.1:8080', '', 'TCP'],
    ['10.180.0.2:53', '127.1.0.2:53', 'web-b', 'UDP'],
    ['10.180.0.2:8080', '127.1.0.2:8080', 'web-b', 'TCP'],
  ], 'UDP endpoints get a backend too');
  assert.deepEqual(map.lookupBackend('10.180.0.2:8080')?.spns, ['ns1/web:http']);
});

test('the printed map has one line per address, in the documented form', () => {
  const text = planAddressMap(exampleStates()).render();
  for (const line of [
    /^ClusterIP +172\.30\.0\.41:80 +-> +127\.10\.0\.1:80 +ns1\/web:http$/m,
    /^NodePort +192\.168\.0\.2:30080 +-> +127\.30\.0\.1:30080 +ns1\/web:http$/m,
    /^ExternalIP +192\.0\.2\.10:80 +-> +127\.40\.0\.1:80 +ns1\/web:http$/m,
    /^LoadBalancer +203\.0\.113\.50:80 +-> +127\.50\.0\.1:80 +ns1\/web:http$/m,
    /^ClusterIP +\[fd00:30::b\]:80 +-> +\[::1\]:0 \(ephemeral: port 80 on ::1 is taken by ClusterIP \[fd00:30::a\]:80\/TCP\) +ns1\/v6b:http$/m,
    /^Backend +10\.180\.0\.2:8080 +-> +127\.1\.0\.2:8080 +web-b$/m,
  ]) {
    assert.match(text, line, text);
  }
});

test('the map is the same for the same cluster, whatever order the manifests come in', () => {
  const a = planAddressMap(stateOf([...webService({ name: 'a', clusterIP: '172.30.0.9' }), ...webService({ name: 'b', clusterIP: '172.30.0.2', endpoints: ['10.180.0.7'] })]));
  const b = planAddressMap(stateOf([...webService({ name: 'b', clusterIP: '172.30.0.2', endpoints: ['10.180.0.7'] }), ...webService({ name: 'a', clusterIP: '172.30.0.9' })]));
  assert.equal(a.render(), b.render());
  assert.equal(a.lookup({ address: '172.30.0.2', port: 80 })?.loopback.address, '127.10.0.1', 'lower ClusterIP, lower host number');
  assert.equal(a.lookup({ address: '172.30.0.9', port: 80 })?.loopback.address, '127.10.0.2');
});

test('ephemeral ports on request: every port 0, with the reason', () => {
  const map = planAddressMap(stateOf(webService()), { ports: 'ephemeral' });
  assert.ok(map.entries.length > 0 && map.backends.length > 0);
  for (const e of [...map.entries, ...map.backends]) {
    assert.equal(e.loopback.port, 0);
    assert.equal(e.fallback, 'ephemeral ports requested');
  }
});

test('withBoundPorts records the ports binding produced, and why one differs', () => {
  const map = planAddressMap(stateOf(webService()));
  const key = map.entries[0]!.key;
  const bound = map.withBoundPorts(new Map([[key, { port: 41000, fallback: 'port 80 is in use' }], ['10.180.0.1:8080', { port: 8080 }]]));
  assert.equal(bound.entry(key)?.loopback.port, 41000);
  assert.equal(bound.entry(key)?.fallback, 'port 80 is in use');
  assert.equal(bound.lookupBackend('10.180.0.1:8080')?.loopback.port, 8080);
  assert.equal(bound.lookupBackend('10.180.0.1:8080')?.fallback, undefined);
  assert.equal(map.entry(key)?.loopback.port, 80, 'the original map is unchanged');
});

test('a NodePort on a node without an address of its family is a note, not an entry', () => {
  const cluster = clusterOf([
    fixtureConfig(),
    makeService('ns1', 'np', (s) => {
      s.spec.type = 'NodePort';
      s.spec.clusterIP = '172.30.0.50';
      s.spec.ports = [tcpPort('http', 80, { nodePort: 30001 })];
    }),
  ]);
  const states = buildProxierStates(cluster, resolveNode(cluster, { node: TEST_NODE_NAME, nodeIPs: ['2001:db8::9'] }));
  const map = planAddressMap(states);
  assert.equal(map.entries.filter((e) => e.kind === 'NodePort').length, 0);
  assert.deepEqual(map.notes, [`ns1/np:http NodePort 30001/TCP: node ${TEST_NODE_NAME} has no IPv4 address, so it is not served`]);
  assert.match(map.render(), /^note: ns1\/np:http NodePort 30001/m);
});

test('an empty cluster is an empty map', () => {
  const map = new AddressMap([], []);
  assert.equal(map.render(), '');
  assert.equal(map.lookup({ address: '10.0.0.1', port: 80 }), undefined);
});
