/**
 * kpsim's Kubernetes API, assembled: a store, the watch hub on it, and the options of the
 * fastify plugin (routes.ts) that src/api/server.ts registers. In-process users (an agent,
 * controllers) take the store itself: `store.onChange(listener)` for every committed change,
 * `store.create/update/patch/delete` to write, `store.cluster()` for the live Cluster.
 * `new Controllers(store).start()` runs the cluster's controllers on it (controllers.ts).
 */
import { DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDRS, parseNodePortRange } from '../../model/allocate.js';
import type { NodePortRange } from '../../model/allocate.js';
import { parseCIDR } from '../../util/ip.js';
import type { AdmissionOptions } from './admission.js';
import type { KubeApiOptions } from './routes.js';
import { KubeStore, type StoreOptions } from './store.js';
import { WatchHub, type WatchHubOptions } from './watch.js';

export { KubeStore } from './store.js';
export type { ChangeListener, StoreEvent, WriteResult, Persistence } from './store.js';
export { WatchHub } from './watch.js';
export { Controllers, CONTROLLERS_ACTOR } from './controllers.js';
export type { ControllerOptions, ControllerStats } from './controllers.js';
export { DataDir } from './data-dir.js';
export { kubeApiPlugin } from './routes.js';
export type { KubeApiOptions } from './routes.js';

/** Admission settings from the flags' text (--service-cluster-ip-range, --service-node-port-range); bad values are left to the seed's validation to report. */
export function admissionOptions(flags: { serviceClusterIPRange?: string; serviceNodePortRange?: string } = {}): AdmissionOptions {
  const cidrs = (flags.serviceClusterIPRange ?? '')
    .split(',')
    .map((c) => parseCIDR(c.trim()))
    .filter((c) => c !== undefined)
    .map((c) => c.text);
  const range: NodePortRange = (flags.serviceNodePortRange !== undefined ? parseNodePortRange(flags.serviceNodePortRange) : undefined) ?? DEFAULT_NODE_PORT_RANGE;
  return { serviceCIDRs: cidrs.length > 0 ? cidrs : DEFAULT_SERVICE_CIDRS, checkServiceCIDRs: cidrs.length > 0, nodePortRange: range };
}

export interface KubeApi {
  store: KubeStore;
  hub: WatchHub;
  /** What buildApiServer's `kube` option takes. */
  options: KubeApiOptions;
}

/** A store (seed it before serving), its watch hub and the plugin options. */
export function createKubeApi(store: StoreOptions, api: Omit<KubeApiOptions, 'store' | 'hub'> & WatchHubOptions = {}): KubeApi {
  const kubeStore = new KubeStore(store);
  const { bookmarkIntervalMs, ...routes } = api;
  const hub = new WatchHub(kubeStore, bookmarkIntervalMs !== undefined ? { bookmarkIntervalMs } : {});
  return { store: kubeStore, hub, options: { store: kubeStore, hub, ...routes } };
}
