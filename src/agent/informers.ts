/**
 * The agent's informers: @kubernetes/client-node ListWatches (list, then watch from the list's
 * resourceVersion; a 410 makes them relist, and a relist reports what changed while they were
 * away as adds, updates and deletes) for the three things kube-proxy watches:
 *
 *   Services        /api/v1/services                             labelSelector !service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name
 *   EndpointSlices  /apis/discovery.k8s.io/v1/endpointslices     the same selector
 *   its Node        /api/v1/nodes                                fieldSelector metadata.name=NODE
 *
 * client-node 1.x stops an informer on any other failure (the API server went away, a 500);
 * here it is started again with backoff (200 ms doubling to 5 s, back to 200 ms once a list or
 * watch gets through), as client-go's reflector does. Objects reach the handlers as the API
 * server's JSON (client-node hands list items as typed objects and watch events as JSON).
 */
import { CoreV1Api, DiscoveryV1Api, NetworkingV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { JsonObject } from '../model/fields.js';
import { describeSourceError, toManifest } from '../source/live.js';
import type { RunnerTimers } from './runner.js';

/** kube-proxy's selector: headless Services and those another proxy serves are not its own. */
export const PROXY_LABEL_SELECTOR = '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name';

export interface InformerHandlers {
  add(obj: JsonObject): void;
  update(obj: JsonObject): void;
  delete(obj: JsonObject): void;
}

export interface InformerOptions {
  readonly log: (line: string) => void;
  readonly timers: RunnerTimers;
  /** The server's URL, for messages. */
  readonly server: string;
}

const BACKOFF_INITIAL_MS = 200;
const BACKOFF_MAX_MS = 5000;

/** One resource's ListWatch, started again with backoff when it stops on an error. */
export class ResilientInformer {
  readonly #watch: ListWatch<KubernetesObject>;
  #stopping = false;
  #synced = false;
  #backoffMs = BACKOFF_INITIAL_MS;
  #retry: unknown;
  #failing = false;
  readonly #syncedWaiters: (() => void)[] = [];

  constructor(
    readonly what: string,
    kc: KubeConfig,
    path: string,
    list: () => Promise<KubernetesListObject<KubernetesObject>>,
    private readonly kind: { apiVersion: string; kind: string },
    handlers: InformerHandlers,
    private readonly options: InformerOptions,
    selectors: { labelSelector?: string; fieldSelector?: string } = {},
    /** A resource the server may not serve (404): then it counts as synced and empty, and is not retried. */
    private readonly optional = false,
  ) {
    const listed = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const result = await list();
      this.#recovered();
      return result;
    };
    this.#watch = new ListWatch(path, new Watch(kc), listed, false, selectors.labelSelector, selectors.fieldSelector);
    const json = (obj: KubernetesObject): JsonObject => toManifest(obj, this.kind.apiVersion, this.kind.kind);
    this.#watch.on('add', (obj) => {
      this.#recovered();
      handlers.add(json(obj));
    });
    this.#watch.on('update', (obj) => {
      this.#recovered();
      handlers.update(json(obj));
    });
    this.#watch.on('delete', (obj) => {
      this.#recovered();
      handlers.delete(json(obj));
    });
    this.#watch.on('error', (err: unknown) => this.#failed(err));
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Start; resolves once a first list has been delivered (kube-proxy's HasSynced). */
  start(): Promise<void> {
    const synced = new Promise<void>((resolve) => this.#syncedWaiters.push(resolve));
    void this.#begin();
    return synced;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#retry !== undefined) this.options.timers.clearTimeout(this.#retry);
    await this.#watch.stop();
  }

  async #begin(): Promise<void> {
    if (this.#stopping) return;
    this.#failing = false;
    try {
      await this.#watch.start();
    } catch (e) {
      this.#failed(e);
      return;
    }
    if (this.#stopping || this.#failing) return;
    // start() returns once the list was handed out and the watch got its answer: connected.
    this.#recovered();
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#syncedWaiters.splice(0)) resolve();
    }
  }

  #recovered(): void {
    if (this.#backoffMs !== BACKOFF_INITIAL_MS) this.options.log(`${this.what}: connected to ${this.options.server} again`);
    this.#backoffMs = BACKOFF_INITIAL_MS;
  }

  #failed(err: unknown): void {
    if (this.#stopping) return;
    if (this.optional && (err as { code?: unknown }).code === 404) {
      this.options.log(`${this.what}: not served by ${this.options.server}; going on without them`);
      this.#stopping = true;
      void this.#watch.stop();
      if (!this.#synced) {
        this.#synced = true;
        for (const resolve of this.#syncedWaiters.splice(0)) resolve();
      }
      return;
    }
    this.#failing = true;
    if (this.#retry !== undefined) return;
    const message = describeSourceError(err, this.options.server, this.what).message;
    this.options.log(`${this.what}: ${message}; trying again in ${this.#backoffMs} ms`);
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
    this.#retry = this.options.timers.setTimeout(() => {
      this.#retry = undefined;
      void this.#begin();
    }, delay);
  }
}

export interface ProxyInformers {
  readonly services: ResilientInformer;
  readonly endpointSlices: ResilientInformer;
  readonly node: ResilientInformer;
  /** networking.k8s.io/v1 ServiceCIDRs (kube-proxy's OnServiceCIDRsChanged); optional on the server. */
  readonly serviceCIDRs: ResilientInformer;
}

/** The informers kube-proxy runs, for one node. */
export function proxyInformers(
  kc: KubeConfig,
  nodeName: string,
  handlers: { services: InformerHandlers; endpointSlices: InformerHandlers; node: InformerHandlers; serviceCIDRs: InformerHandlers },
  options: InformerOptions,
): ProxyInformers {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const fieldSelector = `metadata.name=${nodeName}`;
  type AnyList = KubernetesListObject<KubernetesObject>;
  return {
    services: new ResilientInformer('Services', kc, '/api/v1/services', () => core.listServiceForAllNamespaces({ labelSelector: PROXY_LABEL_SELECTOR }) as Promise<AnyList>, { apiVersion: 'v1', kind: 'Service' }, handlers.services, options, { labelSelector: PROXY_LABEL_SELECTOR }),
    endpointSlices: new ResilientInformer('EndpointSlices', kc, '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces({ labelSelector: PROXY_LABEL_SELECTOR }) as Promise<AnyList>, { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' }, handlers.endpointSlices, options, { labelSelector: PROXY_LABEL_SELECTOR }),
    node: new ResilientInformer(`Node ${nodeName}`, kc, '/api/v1/nodes', () => core.listNode({ fieldSelector }) as Promise<AnyList>, { apiVersion: 'v1', kind: 'Node' }, handlers.node, options, { fieldSelector }),
    serviceCIDRs: new ResilientInformer('ServiceCIDRs', kc, '/apis/networking.k8s.io/v1/servicecidrs', () => networking.listServiceCIDR() as Promise<AnyList>, { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR' }, handlers.serviceCIDRs, options, {}, true),
  };
}
