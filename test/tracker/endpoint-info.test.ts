/**
 * SliceEndpointInfo reads most of its fields from the slice's endpoint: every field must read
 * as kube-proxy's BaseEndpointInfo copies it (unset conditions as nil ones, the first address,
 * the targetRef's name), and withLocal must change isLocal only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Endpoint } from '../../src/model/types.js';
import { SliceEndpointInfo } from '../../src/tracker/endpoint-info.js';
import type { EndpointInfo } from '../../src/tracker/types.js';

/** Every field of an EndpointInfo by name, hint sets as sorted lists. */
function fields(e: EndpointInfo): Record<string, unknown> {
  return {
    ip: e.ip, port: e.port, endpoint: e.endpoint, isLocal: e.isLocal, ready: e.ready, serving: e.serving, terminating: e.terminating,
    zoneHints: [...e.zoneHints].sort(), nodeHints: [...e.nodeHints].sort(), nodeName: e.nodeName, zone: e.zone, podName: e.podName,
  };
}

const cases: { name: string; source: Endpoint; want: Partial<Record<string, unknown>> }[] = [
  {
    name: 'conditions unset read as nil ones: ready, serving, not terminating',
    source: { addresses: ['10.0.0.1'], conditions: {} },
    want: { ip: '10.0.0.1', ready: true, serving: true, terminating: false, zoneHints: [], nodeHints: [], nodeName: undefined, zone: undefined, podName: undefined },
  },
  {
    name: 'conditions as given',
    source: { addresses: ['10.0.0.1'], conditions: { ready: false, serving: true, terminating: true } },
    want: { ready: false, serving: true, terminating: true },
  },
  {
    name: 'the first address only',
    source: { addresses: ['10.0.0.7', '10.0.0.8'], conditions: { ready: true } },
    want: { ip: '10.0.0.7' },
  },
  {
    name: 'node, zone and the pod from targetRef',
    source: { addresses: ['10.0.0.1'], conditions: {}, nodeName: 'n1', zone: 'z1', targetRef: { kind: 'Pod', namespace: 'ns', name: 'web-1' } },
    want: { nodeName: 'n1', zone: 'z1', podName: 'web-1' },
  },
  {
    name: 'hints',
    source: { addresses: ['10.0.0.1'], conditions: {}, hints: { forZones: ['z2', 'z1'], forNodes: ['n1'] } },
    want: { zoneHints: ['z1', 'z2'], nodeHints: ['n1'] },
  },
  {
    name: 'empty hint lists are no hints',
    source: { addresses: ['10.0.0.1'], conditions: {}, hints: { forZones: [], forNodes: [] } },
    want: { zoneHints: [], nodeHints: [] },
  },
];

test('SliceEndpointInfo reads every field as BaseEndpointInfo copies it', () => {
  for (const c of cases) {
    const info = new SliceEndpointInfo(c.source, `${c.source.addresses[0]}:80`, 80, false);
    const got = fields(info);
    for (const [field, want] of Object.entries(c.want)) assert.deepEqual(got[field], want, `${c.name}: ${field} (all fields: ${JSON.stringify(got)})`);
    assert.deepEqual([got['port'], got['endpoint'], got['isLocal']], [80, `${c.source.addresses[0]}:80`, false], c.name);
  }
});

test('withLocal changes isLocal and nothing else', () => {
  for (const c of cases) {
    const info = new SliceEndpointInfo(c.source, `${c.source.addresses[0]}:80`, 80, false);
    const local = info.withLocal(true);
    assert.deepEqual(fields(local), { ...fields(info), isLocal: true }, c.name);
    assert.deepEqual(fields(local.withLocal(false)), fields(info), c.name);
  }
});

test('an endpoint reads the same hint set every time', () => {
  const info = new SliceEndpointInfo({ addresses: ['10.0.0.1'], conditions: {}, hints: { forZones: ['z1'], forNodes: [] } }, '10.0.0.1:80', 80, false);
  assert.equal(info.zoneHints, info.zoneHints, 'one set, not a new one per read');
});
