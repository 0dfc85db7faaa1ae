/**
 * EndpointSlice decoding takes an endpoint as it is when it is what the controller writes
 * (addresses in normal form of the slice's family, flags, names, a targetRef), and reads any
 * other the way that reports what is wrong with it. Each case holds what is read, and every
 * problem's message, byte for byte, for endpoints of both kinds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeObject } from '../../src/manifest/decode.js';
import type { Json } from '../../src/model/fields.js';

interface Case {
  name: string;
  addressType: string;
  endpoints: Json;
  want: Json;
  problems: string[];
}

const CASES: Case[] = [
  {"name": "endpoints as the controller writes them", "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "n1", "zone": "a", "targetRef": {"kind": "Pod", "name": "p1", "namespace": "shop", "uid": "u"}}, {"addresses": ["10.0.0.2", "10.0.0.3"], "conditions": {"ready": false}, "hostname": "h"}, {"addresses": ["10.0.0.4"]}], "want": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "n1", "zone": "a", "targetRef": {"kind": "Pod", "name": "p1", "namespace": "shop"}}, {"addresses": ["10.0.0.2", "10.0.0.3"], "conditions": {"ready": false}, "hostname": "h"}, {"addresses": ["10.0.0.4"], "conditions": {}}], "problems": []},
  {"name": "IPv6 endpoints in normal form and not", "addressType": "IPv6", "endpoints": [{"addresses": ["fd00::1"]}, {"addresses": ["FD00::2"]}, {"addresses": ["fd00:0::3"], "conditions": {"serving": true}}, {"addresses": ["::ffff:10.0.0.1"]}], "want": [{"addresses": ["fd00::1"], "conditions": {}}, {"addresses": ["fd00::2"], "conditions": {}}, {"addresses": ["fd00::3"], "conditions": {"serving": true}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[3].addresses[0]: 10.0.0.1 is not an IPv6 address (addressType is IPv6)"]},
  {"name": "IPv4 endpoints not in normal form", "addressType": "IPv4", "endpoints": [{"addresses": ["010.0.0.1"]}, {"addresses": [" 10.0.0.2"]}, {"addresses": ["::ffff:10.0.0.3"]}], "want": [{"addresses": ["10.0.0.1"], "conditions": {}}, {"addresses": ["10.0.0.2"], "conditions": {}}, {"addresses": ["10.0.0.3"], "conditions": {}}], "problems": []},
  {"name": "an address of the other family", "addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}, {"addresses": ["10.0.0.1", "fd00::2"]}], "want": [{"addresses": ["10.0.0.1"], "conditions": {}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[0].addresses[0]: fd00::1 is not an IPv4 address (addressType is IPv4)", "slices.json: EndpointSlice shop/s: endpoints[1].addresses[1]: fd00::2 is not an IPv4 address (addressType is IPv4)"]},
  {"name": "addresses that are not addresses", "addressType": "IPv6", "endpoints": [{"addresses": [5]}, {"addresses": ["web"]}, {"addresses": []}, {}, {"addresses": null}, {"addresses": "fd00::1"}], "want": [], "problems": ["slices.json: EndpointSlice shop/s: endpoints[0].addresses[0]: 5 is not an IP address", "slices.json: EndpointSlice shop/s: endpoints[1].addresses[0]: \"web\" is not an IP address", "slices.json: EndpointSlice shop/s: endpoints[2].addresses: needs at least one address", "slices.json: EndpointSlice shop/s: endpoints[3].addresses: needs at least one address", "slices.json: EndpointSlice shop/s: endpoints[4].addresses: needs at least one address", "slices.json: EndpointSlice shop/s: endpoints[5].addresses: \"fd00::1\" is not a list", "slices.json: EndpointSlice shop/s: endpoints[5].addresses: needs at least one address"]},
  {"name": "conditions of other types", "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": null}, {"addresses": ["10.0.0.2"], "conditions": "ready"}, {"addresses": ["10.0.0.3"], "conditions": {"ready": "true", "serving": null, "terminating": true}}], "want": [{"addresses": ["10.0.0.1"], "conditions": {}}, {"addresses": ["10.0.0.2"], "conditions": {}}, {"addresses": ["10.0.0.3"], "conditions": {"terminating": true}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[1].conditions: \"ready\" is not an object", "slices.json: EndpointSlice shop/s: endpoints[2].conditions.ready: \"true\" is not true or false"]},
  {"name": "names of other types", "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": 5}, {"addresses": ["10.0.0.2"], "zone": "", "nodeName": null, "hostname": ["h"]}], "want": [{"addresses": ["10.0.0.1"], "conditions": {}}, {"addresses": ["10.0.0.2"], "conditions": {}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[0].nodeName: 5 is not a string", "slices.json: EndpointSlice shop/s: endpoints[1].hostname: a list is not a string"]},
  {"name": "hints", "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "hints": {"forZones": [{"name": "a"}], "forNodes": [{"name": "n1"}, "x"]}}, {"addresses": ["10.0.0.2"], "hints": null}, {"addresses": ["10.0.0.3"], "hints": 4}], "want": [{"addresses": ["10.0.0.1"], "conditions": {}, "hints": {"forZones": ["a"], "forNodes": ["n1"]}}, {"addresses": ["10.0.0.2"], "conditions": {}}, {"addresses": ["10.0.0.3"], "conditions": {}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[0].hints.forNodes[1]: is not an object", "slices.json: EndpointSlice shop/s: endpoints[2].hints: 4 is not an object"]},
  {"name": "targetRefs of every shape", "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "targetRef": {"name": "p"}}, {"addresses": ["10.0.0.2"], "targetRef": {"kind": 5}}, {"addresses": ["10.0.0.3"], "targetRef": {"name": "p", "kind": 5}}, {"addresses": ["10.0.0.4"], "targetRef": {"name": "p", "namespace": ""}}, {"addresses": ["10.0.0.5"], "targetRef": "p"}, {"addresses": ["10.0.0.6"], "targetRef": null}, {"addresses": ["10.0.0.7"], "targetRef": {"name": "", "kind": "Pod"}}], "want": [{"addresses": ["10.0.0.1"], "conditions": {}, "targetRef": {"kind": "Pod", "name": "p"}}, {"addresses": ["10.0.0.2"], "conditions": {}}, {"addresses": ["10.0.0.3"], "conditions": {}, "targetRef": {"kind": "Pod", "name": "p"}}, {"addresses": ["10.0.0.4"], "conditions": {}, "targetRef": {"kind": "Pod", "name": "p"}}, {"addresses": ["10.0.0.5"], "conditions": {}}, {"addresses": ["10.0.0.6"], "conditions": {}}, {"addresses": ["10.0.0.7"], "conditions": {}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[2].targetRef.kind: 5 is not a string", "slices.json: EndpointSlice shop/s: endpoints[4].targetRef: \"p\" is not an object"]},
  {"name": "an endpoint that is not an object", "addressType": "IPv4", "endpoints": ["10.0.0.1", null, {"addresses": ["10.0.0.2"]}], "want": [{"addresses": ["10.0.0.2"], "conditions": {}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[0]: is not an object", "slices.json: EndpointSlice shop/s: endpoints[1]: is not an object"]},
  {"name": "FQDN endpoints", "addressType": "FQDN", "endpoints": [{"addresses": ["example.com"], "conditions": {"ready": true}}, {"addresses": [5]}], "want": [{"addresses": ["example.com"], "conditions": {"ready": true}}], "problems": ["slices.json: EndpointSlice shop/s: endpoints[1].addresses[0]: is not a string"]},
];

for (const c of CASES) {
  test(`EndpointSlice with ${c.name}: what is read and every message`, () => {
    const doc: Json = {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: c.addressType, endpoints: c.endpoints, ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    };
    const decoded = decodeObject(doc, 'slices.json');
    assert.deepEqual(decoded.problems.map((p) => p.message), c.problems);
    // JSON compares key order too: an endpoint made another way must list its fields alike.
    assert.equal(JSON.stringify(decoded.endpointSlices[0]?.endpoints ?? null), JSON.stringify(c.want));
  });
}
