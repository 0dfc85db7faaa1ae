/**
 * --allocate fills in what the API server would: protocol TCP, ClusterIPs from the service
 * CIDRs (per family, dual-stack too), node ports from the range, never a value already taken.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { clusterFromManifests, type LoadOptions } from '../../src/manifest/load.js';

function load(text: string, options: LoadOptions) {
  return clusterFromManifests([{ file: 'svc.yaml', text }], { allocate: true, ...options });
}

const service = (name: string, spec: string): string => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n${spec}\n`;

test('ClusterIPs: the lowest free address of the range, skipping ones already used', () => {
  const text = [
    service('taken', '  clusterIP: 10.96.0.2\n  ports: [{port: 80}]'),
    service('a', '  ports: [{port: 80}]'),
    service('b', '  ports: [{port: 80}]'),
  ].join('---\n');
  const cluster = load(text, { serviceClusterIPRange: '10.96.0.0/24' });
  assert.deepEqual(cluster.services.map((s) => `${s.name} ${s.clusterIPs.join(',')} ${s.ipFamilies.join(',')} ${s.ports[0]!.protocol}`), [
    'taken 10.96.0.2  TCP',
    'a 10.96.0.1 IPv4 TCP',
    'b 10.96.0.3 IPv4 TCP',
  ]);
  assert.deepEqual(cluster.warnings, []);
});

test('dual-stack: one address per family the service asks for', () => {
  const text = [
    service('dual', '  ipFamilies: [IPv6, IPv4]\n  ports: [{port: 80}]'),
    service('v4', '  ports: [{port: 80}]'),
  ].join('---\n');
  const cluster = load(text, { serviceClusterIPRange: '10.96.0.0/16,fd00:10:96::/112' });
  assert.deepEqual(cluster.services.map((s) => s.clusterIPs), [['fd00:10:96::1', '10.96.0.1'], ['10.96.0.2']]);
});

test('node ports: the lowest free port of the range, health check ports too', () => {
  const text = [
    service('np', '  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{name: a, port: 80, nodePort: 30000}, {name: b, port: 81}]'),
    service('lb', '  type: LoadBalancer\n  clusterIP: 10.96.0.11\n  externalTrafficPolicy: Local\n  ports: [{port: 443}]'),
  ].join('---\n');
  const cluster = load(text, { serviceNodePortRange: '30000-30010' });
  assert.deepEqual(cluster.services.map((s) => [s.ports.map((p) => p.nodePort), s.healthCheckNodePort]), [
    [[30000, 30001], 0],
    [[30002], 30003],
  ]);
});

test('an exhausted range is an error naming the service and field', () => {
  // A /30 has two host addresses (the network and broadcast addresses are never handed out).
  const text = ['a', 'b', 'c'].map((name) => service(name, '  ports: [{port: 80}]')).join('---\n');
  assert.throws(
    () => load(text, { serviceClusterIPRange: '10.96.0.0/30' }),
    (e: unknown) => e instanceof KpsimError && e.message === 'svc.yaml: Service default/c: spec.clusterIP: no ClusterIP could be allocated: 10.96.0.0/30 is full',
  );
});

test('without --allocate nothing is invented', () => {
  const cluster = clusterFromManifests([{ file: 'svc.yaml', text: service('a', '  type: NodePort\n  ports: [{port: 80}]') }]);
  assert.deepEqual([cluster.services[0]!.clusterIPs, cluster.services[0]!.ports], [[], []]);
  assert.deepEqual(cluster.warnings.map((w) => w.path), ['spec.ports[0].protocol', 'spec.clusterIP']);
});
