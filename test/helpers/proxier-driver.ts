/**
 * Drives one proxier's change trackers and view the way an agent's informers would, from
 * manifests: put or delete a Service or EndpointSlice, then update the view. Tests of partial
 * syncs use it to make random histories and compare the result with a full compile of the same
 * objects.
 */
import assert from 'node:assert/strict';
import { decodeObject } from '../../src/manifest/decode.js';
import type { Json } from '../../src/model/fields.js';
import type { EndpointSlice, Service } from '../../src/model/types.js';
import { EndpointsChangeTracker } from '../../src/tracker/endpoints-change-tracker.js';
import { buildProxierState, proxierNodeContext, resolveNode } from '../../src/tracker/proxier-state.js';
import { ProxierView, type ViewUpdate } from '../../src/tracker/proxier-view.js';
import { ServiceChangeTracker } from '../../src/tracker/service-change-tracker.js';
import type { ProxierState } from '../../src/tracker/types.js';
import type { Family } from '../../src/util/ip.js';
import { type EndpointSliceManifest, type Manifest, type ServiceManifest, clusterOf, ep, makeService, makeSlice, tcpPort } from './cluster-builders.js';

export function decodeService(m: ServiceManifest): Service {
  const out = decodeObject(m as unknown as Json, 'test');
  assert.deepEqual(out.problems.map((p) => p.message), []);
  return out.services[0]!;
}

export function decodeSlice(m: EndpointSliceManifest): EndpointSlice {
  const out = decodeObject(m as unknown as Json, 'test');
  assert.deepEqual(out.problems.map((p) => p.message), []);
  return out.endpointSlices[0]!;
}

export class ProxierDriver {
  readonly services = new Map<string, ServiceManifest>();
  readonly slices = new Map<string, EndpointSliceManifest>();
  readonly serviceChanges: ServiceChangeTracker;
  readonly endpointChanges: EndpointsChangeTracker;
  readonly view: ProxierView;

  /** `base`: the Node and KubeProxyConfiguration manifests. */
  constructor(readonly base: readonly Manifest[], readonly family: Family = 4) {
    const cluster = clusterOf(base);
    const node = resolveNode(cluster);
    this.serviceChanges = new ServiceChangeTracker(family, () => cluster.config);
    this.endpointChanges = new EndpointsChangeTracker(family, node.name, 0);
    this.view = new ProxierView(proxierNodeContext(cluster.config, node, family));
  }

  putService(m: ServiceManifest): void {
    const key = `${m.metadata.namespace}/${m.metadata.name}`;
    const prev = this.services.get(key);
    this.services.set(key, m);
    this.serviceChanges.update(prev && decodeService(prev), decodeService(m));
  }

  deleteService(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const prev = this.services.get(key);
    if (prev === undefined) return;
    this.services.delete(key);
    this.serviceChanges.update(decodeService(prev), undefined);
  }

  putSlice(m: EndpointSliceManifest): void {
    this.slices.set(`${m.metadata.namespace}/${m.metadata.name}`, m);
    this.endpointChanges.endpointSliceUpdate(decodeSlice(m), false);
  }

  deleteSlice(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const prev = this.slices.get(key);
    if (prev === undefined) return;
    this.slices.delete(key);
    this.endpointChanges.endpointSliceUpdate(decodeSlice(prev), true);
  }

  update(): ViewUpdate {
    return this.view.update(this.serviceChanges, this.endpointChanges);
  }

  /** buildProxierState over the same objects: what a full compile sees. */
  fullState(): ProxierState {
    const cluster = clusterOf([...this.base, ...this.services.values(), ...this.slices.values()]);
    return buildProxierState(cluster, resolveNode(cluster), this.family);
  }

  /** One random change among a few services in ns1 (names a..f), from `rng`; returns what it did. */
  randomChange(rng: () => number, nodeName: string): string {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
    const name = pick(names);
    const r = rng();
    if (r < 0.3) {
      const svc = makeService('ns1', name, (s) => {
        s.spec.clusterIP = `172.30.${names.indexOf(name)}.${pick([1, 2])}`;
        s.spec.ports = rng() < 0.7 ? [tcpPort('http', 80)] : [tcpPort('http', 80), { name: 'dns', port: 53, protocol: 'UDP' }];
        if (rng() < 0.3) {
          s.spec.type = 'NodePort';
          s.spec.ports[0]!.nodePort = 30000 + names.indexOf(name);
          if (rng() < 0.5) s.spec.externalTrafficPolicy = 'Local';
        }
        if (rng() < 0.15) s.spec.internalTrafficPolicy = 'Local';
        if (rng() < 0.15) {
          s.spec.sessionAffinity = 'ClientIP';
          s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 600 } };
        }
      });
      this.putService(svc);
      return `put service ${name} ${svc.spec.clusterIP}`;
    }
    if (r < 0.4) {
      this.deleteService('ns1', name);
      return `delete service ${name}`;
    }
    if (r < 0.85) {
      const slice = makeSlice('ns1', name, pick([1, 2]), (s) => {
        s.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }];
        const count = Math.floor(rng() * 4);
        for (let i = 0; i < count; i++) {
          const terminating = rng() < 0.25;
          s.endpoints.push(ep(`10.0.${names.indexOf(name)}.${1 + Math.floor(rng() * 6)}`, pick([nodeName, 'other']), terminating ? { ready: false, serving: rng() < 0.5, terminating: true } : undefined));
        }
      });
      this.putSlice(slice);
      return `put slice ${slice.metadata.name} ${slice.endpoints.map((e) => e.addresses[0]).join(',')}`;
    }
    const sliceName = `${name}-${pick([1, 2])}`;
    this.deleteSlice('ns1', sliceName);
    return `delete slice ${sliceName}`;
  }
}
