/**
 * One line of `kpsim nodes`: what a node's kube-proxy writes in each mode (counted through the
 * mode's driver, with the work shared across the cluster's nodes), its endpoints, the services
 * whose Local traffic policy drops traffic on it (endpoints elsewhere, none here), and what it
 * answers on the load balancers' health checks.
 */
import type { ModeCompileOptions, ModeSize, RulesMode } from '../node/mode-driver.js';
import { modeDriver } from '../node/modes.js';
import type { ProxierState, ServicePortInfo } from '../tracker/types.js';
import type { Family } from '../util/ip.js';
import { ZONE_LABEL } from '../topology/categorize.js';
import type { ClusterView } from './cluster-view.js';
import type { HealthChecks } from './health-check.js';

/** What a mode without a size gives instead: its one-line summary per family. */
export interface ModeSummaryLines {
  readonly summary: readonly string[];
}

export interface NodeSummary {
  readonly node: string;
  readonly addresses: readonly string[];
  /** topology.kubernetes.io/zone, when labelled. */
  readonly zone?: string;
  readonly families: readonly Family[];
  /** By mode: what it writes on the node. */
  readonly modes: Readonly<Record<string, ModeSize | ModeSummaryLines>>;
  /** Endpoints on this node: distinct addresses over every service and family. */
  readonly localEndpoints: number;
  /**
   * Services with a Local traffic policy that have endpoints, but none on this node: kube-proxy
   * drops their external (eTP) or internal (iTP) traffic here.
   */
  readonly withoutLocalEndpoints: { readonly externalTrafficPolicyLocal: number; readonly internalTrafficPolicyLocal: number };
  /** Health check node ports: how many answer 200 and how many 503. */
  readonly healthChecks: { readonly ok: number; readonly unavailable: number };
}

export interface SummarizeOptions {
  readonly modes: readonly RulesMode[];
  /** Compile options per mode (each mode reads the ones it knows). */
  readonly compile: ModeCompileOptions;
}

export function summarizeNode(view: ClusterView, name: string, healthChecks: HealthChecks, opts: SummarizeOptions): NodeSummary {
  const node = view.resolve(name);
  const states = view.statesOf(node);
  const modes: Record<string, ModeSize | ModeSummaryLines> = {};
  for (const mode of opts.modes) {
    const driver = modeDriver(mode);
    const shared = view.sharedWork(mode, opts.compile);
    const options: ModeCompileOptions = { ...opts.compile, ...(shared !== undefined ? { shared } : {}) };
    if (driver.sizeOf !== undefined) modes[mode] = driver.sizeOf(node, states, options);
    else if (driver.size !== undefined) modes[mode] = driver.size(driver.compile(node, states, options));
    else modes[mode] = { summary: driver.summarize(driver.compile(node, states, options)) };
  }
  let ok = 0;
  let unavailable = 0;
  for (const svc of healthChecks.services) {
    if (healthChecks.status(svc, name) === 200) ok++;
    else unavailable++;
  }
  const zone = node.labels[ZONE_LABEL];
  return {
    node: name,
    addresses: node.ips,
    ...(zone !== undefined ? { zone } : {}),
    families: states.map((s) => s.family),
    modes,
    localEndpoints: localEndpointAddresses(view, states).size,
    withoutLocalEndpoints: localPolicyDrops(view, states),
    healthChecks: { ok, unavailable },
  };
}

function localEndpointAddresses(view: ClusterView, states: readonly ProxierState[]): Set<string> {
  const addresses = new Set<string>();
  for (const state of states) {
    for (const i of view.positionsOnNode(state.family, state.nodeName)) {
      for (const ep of state.servicePorts[i]!.endpoints) if (ep.isLocal) addresses.add(ep.ip);
    }
  }
  return addresses;
}

/** Services whose Local policy finds endpoints in the cluster but none on the node (the DROP rules). */
function localPolicyDrops(view: ClusterView, states: readonly ProxierState[]): NodeSummary['withoutLocalEndpoints'] {
  const external = new Set<string>();
  const internal = new Set<string>();
  for (const state of states) {
    for (const i of view.localPolicyPositions(state.family)) {
      const sp = state.servicePorts[i]!;
      const { hasAnyEndpoints, localEndpoints } = sp.categorized;
      if (!hasAnyEndpoints || (localEndpoints?.length ?? 0) > 0) continue;
      const name = serviceNameOf(sp.info);
      if (sp.info.externalPolicyLocal && sp.info.externallyAccessible) external.add(name);
      if (sp.info.internalPolicyLocal) internal.add(name);
    }
  }
  return { externalTrafficPolicyLocal: external.size, internalTrafficPolicyLocal: internal.size };
}

/** "namespace/name" of a port's service, made once per port (every node asks again). */
const serviceNames = new WeakMap<ServicePortInfo, string>();

function serviceNameOf(info: ServicePortInfo): string {
  let name = serviceNames.get(info);
  if (name === undefined) serviceNames.set(info, (name = `${info.svcPortName.namespace}/${info.svcPortName.name}`));
  return name;
}
