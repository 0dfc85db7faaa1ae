/**
 * What `--target svc/NAME[:port]` and `--nodeport NODE:PORT` name: one TCP (or, with
 * `--proto udp`, UDP) service port of the node's proxier state, and the cluster-side address the load is meant for (its ClusterIP, or the
 * node's IP and node port). The proxy's address map then gives the loopback listener for it.
 *
 * A malformed flag is a usage error naming the flag (exit 2); a well-formed name of something the
 * cluster does not have is KPSIM_ERR_PROXY_NO_TARGET (exit 1) and lists what does exist.
 */
import { KpsimError } from '../errors.js';
import type { Cluster, Protocol } from '../model/types.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { ipFamily, joinHostPort, normalizeIP, splitHostPortText } from '../util/ip.js';
import type { TargetVia } from './report.js';

export type TargetSpec =
  | { readonly kind: 'service'; readonly text: string; readonly namespace?: string; readonly name: string; readonly port?: string }
  | { readonly kind: 'nodePort'; readonly text: string; readonly node: string; readonly port: number };

export interface ResolvedTarget {
  readonly spec: string;
  readonly via: TargetVia;
  readonly state: ProxierState;
  readonly servicePort: ProxierServicePort;
  /** The cluster-side address: ClusterIP and port, or node IP and node port. */
  readonly address: string;
  readonly port: number;
}

const NAME = '[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?';
const SERVICE_TARGET = new RegExp(`^(?:svc|service|services)/(?:(${NAME})/)?(${NAME})(?::([-a-z0-9]+))?$`);

/** `--target svc/NAME`, `svc/NAMESPACE/NAME`, either with `:PORT` (a port name or number). */
export function parseTargetFlag(value: string): TargetSpec {
  const m = SERVICE_TARGET.exec(value);
  if (!m) throw usage('--target', `${JSON.stringify(value)} is not svc/NAME[:port] or svc/NAMESPACE/NAME[:port]`);
  return { kind: 'service', text: value, ...(m[1] !== undefined ? { namespace: m[1] } : {}), name: m[2]!, ...(m[3] !== undefined ? { port: m[3] } : {}) };
}

/** `--nodeport NODE:PORT`: a node name or node IP, and a node port. */
export function parseNodePortFlag(value: string): TargetSpec {
  const parts = splitHostPortText(value);
  const port = parts ? Number(parts.portText) : NaN;
  if (!parts || !(port >= 1 && port <= 65535)) throw usage('--nodeport', `${JSON.stringify(value)} is not NODE:PORT (a node name or IP, and a port 1-65535)`);
  return { kind: 'nodePort', text: value, node: parts.host, port };
}

/** The service port the spec names, of the given protocol (TCP unless told). */
export function resolveTarget(cluster: Cluster, states: readonly ProxierState[], spec: TargetSpec, protocol: Protocol = 'TCP'): ResolvedTarget {
  return spec.kind === 'service' ? resolveService(cluster, states, spec, protocol) : resolveNodePort(cluster, states, spec, protocol);
}

function resolveService(cluster: Cluster, states: readonly ProxierState[], spec: Extract<TargetSpec, { kind: 'service' }>, protocol: Protocol): ResolvedTarget {
  const candidates = cluster.services.filter((s) => s.name === spec.name && (spec.namespace === undefined || s.namespace === spec.namespace));
  const service = candidates.length > 1 ? candidates.find((s) => s.namespace === 'default') : candidates[0];
  if (service === undefined) {
    const detail = candidates.length > 1
      ? `service ${spec.name} is in several namespaces (${candidates.map((s) => s.namespace).join(', ')}); name one: svc/NAMESPACE/${spec.name}`
      : `service ${spec.namespace === undefined ? `${spec.name} does not exist in any namespace` : `${spec.namespace}/${spec.name} does not exist`}; services: ${serviceList(cluster)}`;
    throw noTarget(detail);
  }
  const id = `${service.namespace}/${service.name}`;
  if (service.type === 'ExternalName') throw noTarget(`service ${id} is ExternalName: kube-proxy has nothing to proxy for it`);
  if (service.headless) throw noTarget(`service ${id} is headless (clusterIP None): kube-proxy has nothing to proxy for it`);
  // The service's ports in the order it lists them, primary family first.
  const ofService = (state: ProxierState): ProxierServicePort[] =>
    service.ports
      .map((p) => state.servicePorts.find((sp) => sp.info.service === service && sp.info.svcPortName.port === p.name && sp.info.protocol === p.protocol && sp.info.port === p.port))
      .filter((sp): sp is ProxierServicePort => sp !== undefined);
  for (const state of states) {
    const ports = ofService(state);
    if (ports.length === 0) continue;
    const ofProtocol = ports.filter((sp) => sp.info.protocol === protocol);
    const chosen = spec.port === undefined
      ? ofProtocol[0]
      : ofProtocol.find((sp) => sp.info.svcPortName.port === spec.port || String(sp.info.port) === spec.port);
    if (chosen === undefined) {
      const list = ofProtocol.map((sp) => `${sp.info.svcPortName.port || '(unnamed)'} ${sp.info.port}`).join(', ') || 'none';
      const other = ports.filter((sp) => sp.info.protocol !== protocol).map((sp) => sp.info.protocol);
      const hint = other.length > 0 && ofProtocol.length === 0 ? ` (it has ${[...new Set(other)].join(', ')} ports: choose with --proto)` : '';
      throw noTarget(spec.port === undefined
        ? `service ${id} has no ${protocol} port${hint}`
        : `service ${id} has no ${protocol} port ${JSON.stringify(spec.port)}; its ${protocol} ports: ${list}${hint}`);
    }
    return { spec: spec.text, via: 'ClusterIP', state, servicePort: chosen, address: chosen.info.clusterIP, port: chosen.info.port };
  }
  throw noTarget(`service ${id} has no ClusterIP kube-proxy serves`);
}

function resolveNodePort(cluster: Cluster, states: readonly ProxierState[], spec: Extract<TargetSpec, { kind: 'nodePort' }>, protocol: Protocol): ResolvedTarget {
  const asIP = normalizeIP(spec.node);
  const here = states[0]?.nodeName ?? '';
  const isThisNode = (state: ProxierState): boolean => (asIP !== undefined ? state.nodeIPs.includes(asIP) : state.nodeName === spec.node);
  const state = asIP !== undefined ? states.find((s) => s.family === ipFamily(asIP) && isThisNode(s)) : states.find(isThisNode);
  if (state === undefined) {
    const other = cluster.nodes.find((n) => n.name === spec.node || (asIP !== undefined && n.addresses.some((a) => normalizeIP(a.address) === asIP)));
    const nodeIPs = states.flatMap((s) => s.nodeIPs);
    throw noTarget(other !== undefined
      ? `node ${spec.node} is another node: kpsim runs node ${here}'s proxy (choose the node with --node ${other.name})`
      : `node ${spec.node} is not node ${here} or one of its addresses (${nodeIPs.join(', ') || 'none'})`);
  }
  const address = asIP ?? state.nodeIPs[0];
  if (address === undefined) throw noTarget(`node ${state.nodeName} has no IPv${state.family} address to serve node ports on`);
  const chosen = state.servicePorts.find((sp) => sp.info.nodePort === spec.port && sp.info.protocol === protocol);
  if (chosen === undefined) {
    const list = state.servicePorts.filter((sp) => sp.info.nodePort !== 0 && sp.info.protocol === protocol).map((sp) => `${sp.info.nodePort} (${sp.info.spn})`);
    throw noTarget(`node port ${spec.port} is not a ${protocol} node port of any IPv${state.family} service; ${protocol === 'TCP' ? '' : 'UDP '}node ports: ${list.join(', ') || 'none'}`);
  }
  return { spec: spec.text, via: 'NodePort', state, servicePort: chosen, address, port: spec.port };
}

/** "10.96.100.20:80" */
export function targetAddress(target: ResolvedTarget): string {
  return joinHostPort(target.address, target.port);
}

function serviceList(cluster: Cluster): string {
  const names = cluster.services.map((s) => `${s.namespace}/${s.name}`).sort();
  return names.length > 0 ? names.join(', ') : 'none';
}

function noTarget(detail: string): KpsimError {
  return new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', detail);
}

function usage(flag: string, detail: string): KpsimError {
  return new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${detail}`);
}
