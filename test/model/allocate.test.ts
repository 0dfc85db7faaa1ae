/**
 * --allocate fills in what the API server would: protocol TCP, ClusterIPs from the service
 * CIDRs (per family, dual-stack too; never the network address, and the first address only for
 * default/kubernetes), node ports from the range, never a value already taken.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { clusterFromManifests, type LoadOptions } from '../../src/manifest/load.js';

function load(text: string, options: LoadOptions) {
  return clusterFromManifests([{ file: 'svc.yaml', text }], { allocate: true, ...options });
}

const service = (name: string, spec: string): string => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n${spec}\n`;

test('ClusterIPs: the lowest free address of the range, skipping ones already used and the first (default/kubernetes)', () => {
  const text = [
    service('taken', '  clusterIP: 10.96.0.3\n  ports: [{port: 80}]'),
    service('a', '  ports: [{port: 80}]'),
    service('b', '  ports: [{port: 80}]'),
  ].join('---\n');
  const cluster = load(text, { serviceClusterIPRange: '10.96.0.0/24' });
  assert.deepEqual(cluster.services.map((s) => `${s.name} ${s.clusterIPs.join(',')} ${s.ipFamilies.join(',')} ${s.ports[0]!.protocol}`), [
    'taken 10.96.0.3  TCP',
    'a 10.96.0.2 IPv4 TCP',
    'b 10.96.0.4 IPv4 TCP',
  ]);
  assert.deepEqual(cluster.warnings.filter((w) => w.object !== undefined), []);
});

test('default/kubernetes gets the first address of each range, wherever it is in the input', () => {
  const text = [
    service('a', '  ports: [{port: 80}]'),
    'apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: default}\nspec:\n  ipFamilies: [IPv4, IPv6]\n  ports: [{name: https, port: 443}]\n',
    'apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: other}\nspec:\n  ports: [{name: https, port: 443}]\n',
  ].join('---\n');
  const cluster = load(text, { serviceClusterIPRange: '10.96.0.0/24,fd00:10:96::/112' });
  assert.deepEqual(cluster.services.map((s) => `${s.namespace}/${s.name} ${s.clusterIPs.join(',')}`), [
    'default/a 10.96.0.2',
    'default/kubernetes 10.96.0.1,fd00:10:96::1',
    'other/kubernetes 10.96.0.3',
  ]);
});

test('dual-stack: one address per family the service asks for', () => {
  const text = [
    service('dual', '  ipFamilies: [IPv6, IPv4]\n  ports: [{port: 80}]'),
    service('v4', '  ports: [{port: 80}]'),
  ].join('---\n');
  const cluster = load(text, { serviceClusterIPRange: '10.96.0.0/16,fd00:10:96::/112' });
  assert.deepEqual(cluster.services.map((s) => s.clusterIPs), [['fd00:10:96::2', '10.96.0.2'], ['10.96.0.3']]);
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
  // A /29 has six host addresses (the network and broadcast addresses are never handed out),
  // the first of them default/kubernetes's.
  const text = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => service(name, '  ports: [{port: 80}]')).join('---\n');
  assert.throws(
    () => load(text, { serviceClusterIPRange: '10.96.0.0/29' }),
    (e: unknown) => e instanceof KpsimError && e.message === 'svc.yaml: Service default/f: spec.clusterIP: no ClusterIP could be allocated: 10.96.0.0/29 is full',
  );
});

test('without --allocate nothing is invented', () => {
  const cluster = clusterFromManifests([{ file: 'svc.yaml', text: service('a', '  type: NodePort\n  ports: [{port: 80}]') }]);
  assert.deepEqual([cluster.services[0]!.clusterIPs, cluster.services[0]!.ports], [[], []]);
  assert.deepEqual(cluster.warnings.map((w) => w.path), ['spec.ports[0].protocol', 'spec.clusterIP']);
});
