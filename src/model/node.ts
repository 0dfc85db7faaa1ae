/** v1 Node: name, addresses, labels, pod CIDRs; taints, readiness and allocatable CPU for the controllers. */
import { child, type FieldReader, type Json, type JsonObject, isObject } from './fields.js';
import { readMetadata } from './metadata.js';
import { TAINT_EFFECTS } from './pod.js';
import type { Node, NodeAddress, Taint } from './types.js';

/** The zone label: the EndpointSlice controller copies it into endpoints, kube-proxy compares hints with it. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Address types that carry an IP address (the DNS ones carry names). */
export const IP_ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

export function decodeNode(doc: JsonObject, r: FieldReader): Node | undefined {
  const meta = readMetadata(doc, r, 'Node', false);
  if (!meta) return undefined;
  const spec = r.object_(doc, 'spec', '') ?? {};
  const status = r.object_(doc, 'status', '') ?? {};
  const addresses: NodeAddress[] = [];
  r.list(status, 'addresses', 'status').forEach((a, i) => {
    const path = child('status.addresses', i);
    if (!isObject(a)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
      return;
    }
    const type = r.string(a, 'type', path, true);
    if (type === undefined) return;
    if (IP_ADDRESS_TYPES.has(type)) {
      const ip = r.ip(a['address'], child(path, 'address'));
      if (ip !== undefined) addresses.push({ type, address: ip });
    } else {
      const address = r.string(a, 'address', path, true);
      if (address !== undefined) addresses.push({ type, address });
    }
  });
  const podCIDRs = r.list(spec, 'podCIDRs', 'spec').map((c, i) => r.cidr(c, child('spec.podCIDRs', i))).filter((c): c is string => c !== undefined);
  const podCIDR = r.string(spec, 'podCIDR', 'spec');
  if (podCIDR !== undefined && podCIDRs.length === 0) {
    const cidr = r.cidr(podCIDR, 'spec.podCIDR');
    if (cidr !== undefined) podCIDRs.push(cidr);
  }
  const node: Node = { kind: 'Node', origin: { file: r.file, object: r.object }, name: meta.name, labels: meta.labels, addresses, podCIDRs };
  const taints = r.list(spec, 'taints', 'spec').map((t, i) => readTaint(t, child('spec.taints', i), r)).filter((t): t is Taint => t !== undefined);
  if (taints.length > 0) node.taints = taints;
  if (r.boolean(spec, 'unschedulable', 'spec')) node.unschedulable = true;
  const readyCondition = r.list(status, 'conditions', 'status').find((c) => isObject(c) && c['type'] === 'Ready');
  if (isObject(readyCondition)) node.ready = readyCondition['status'] === 'True';
  const allocatable = r.object_(status, 'allocatable', 'status');
  if (allocatable) {
    const cpu = readQuantityMillis(allocatable['cpu'], 'status.allocatable.cpu', r);
    if (cpu !== undefined) node.allocatableCPUMillis = cpu;
    const pods = readQuantityMillis(allocatable['pods'], 'status.allocatable.pods', r);
    if (pods !== undefined) node.allocatablePods = Math.floor(pods / 1000);
  }
  return node;
}

function readTaint(value: Json, path: string, r: FieldReader): Taint | undefined {
  if (!isObject(value)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const key = r.string(value, 'key', path, true);
  const effect = r.string(value, 'effect', path, true);
  if (key === undefined || effect === undefined) return undefined;
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'effect'), `Unsupported value: ${JSON.stringify(effect)}: supported values: ${TAINT_EFFECTS.map((e) => JSON.stringify(e)).join(', ')}`);
    return undefined;
  }
  return { key, value: r.string(value, 'value', path) ?? '', effect: effect as Taint['effect'] };
}

/**
 * A resource quantity ("4", "3800m", "1.5", "110") in thousandths; undefined when absent. Binary
 * and decimal suffixes other than m are not read (CPU and pod counts do not use them).
 */
function readQuantityMillis(value: Json | undefined, path: string, r: FieldReader): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'number' ? String(value) : value;
  const m = typeof text === 'string' ? /^(\d+(?:\.\d+)?)(m?)$/.exec(text.trim()) : null;
  if (!m) {
    r.warn(path, `${JSON.stringify(value)} is not a quantity kpsim reads (such as "4" or "3800m"), so it is taken as not set`);
    return undefined;
  }
  return Math.round(Number(m[1]) * (m[2] === 'm' ? 1 : 1000));
}

/** The node's IP addresses (InternalIP first, then ExternalIP), in order. */
export function nodeIPs(node: Node): string[] {
  const internal = node.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address);
  const external = node.addresses.filter((a) => a.type === 'ExternalIP').map((a) => a.address);
  return [...new Set([...internal, ...external])];
}
