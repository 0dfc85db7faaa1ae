/**
 * The Kubernetes API's storage: every served object as the API server stores it (JSON, with
 * metadata.uid, creationTimestamp and resourceVersion), one resourceVersion counter bumped by
 * every write as etcd's revision is, a bounded history of change events for watches that resume
 * from an older resourceVersion, and the typed form of each object that kpsim's compilers read.
 *
 * Writes are validated (admission.ts), written through to the --data-dir when there is one, and
 * only then applied and announced: `onChange` listeners (the watch hub, an agent, controllers)
 * see every committed change, in resourceVersion order, synchronously after it is applied.
 * `cluster()` gives the live Cluster for the compilers and tracers, rebuilt after a change.
 */
import { randomUUID, randomInt } from 'node:crypto';
import { KpsimError } from '../../errors.js';
import { type DecodedManifest, decodeObject, emptyDecodedManifest, mergeDecoded } from '../../manifest/decode.js';
import { type LoadOptions, type ManifestObject, clusterFromDecoded } from '../../manifest/load.js';
import { assembleCluster } from '../../model/cluster.js';
import { type Json, type JsonObject, isObject } from '../../model/fields.js';
import type { Cluster, EndpointSlice, Node, Pod, ProxyConfig, Service, Warning, Workload } from '../../model/types.js';
import { type AdmissionOptions, admit, prepareWrite, writeBackAllocation } from './admission.js';
import { derivedObjects } from './derived.js';
import { type PatchType, applyConfiguration, jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { NAMESPACES, RESOURCES, type ResourceType, apiVersionOf } from './resources.js';
import { scaleOf, scaledObject } from './scale.js';
import { alreadyExists, badRequest, conflict, forbidden, internalError, invalid, notFound } from './status.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One committed change. `object` is the new state (the last state, with a new resourceVersion, for DELETED). */
export interface StoreEvent {
  readonly type: ChangeType;
  readonly resource: ResourceType;
  readonly object: JsonObject;
  /** The state before the change (absent for ADDED). */
  readonly previous?: JsonObject;
  readonly resourceVersion: number;
  /** Who wrote it, when the writer said (WriteOptions.actor): the controllers inside the server mark their own writes. */
  readonly actor?: string;
}

export type ChangeListener = (event: StoreEvent) => void;

/** Writes each committed change somewhere durable before it is applied (the --data-dir). */
export interface Persistence {
  /** Called with every change of one write, and the counter after it; must not resolve before the changes are durable. */
  write(changes: readonly StoreEvent[], resourceVersion: number): Promise<void>;
}

export interface StoreOptions {
  admission: AdmissionOptions;
  /** The KubeProxyConfiguration the live Cluster carries (the seeds' or --config's). */
  config?: ProxyConfig;
  /** Clock for creationTimestamp. */
  now?: () => Date;
  /** Change events kept for watches that resume from an older resourceVersion; older ones answer 410. */
  historyLimit?: number;
  persistence?: Persistence;
}

export interface WriteOptions {
  /** Validate and answer without storing (`dryRun=All`). */
  dryRun?: boolean;
  subresource?: 'status';
  /** Name file-like origin of the object in messages; "api" by default. */
  source?: string;
  /** Who writes: carried on the change events (StoreEvent.actor). */
  actor?: string;
}

export interface WriteResult {
  object: JsonObject;
  warnings: readonly Warning[];
  /** A PUT or apply created the object. */
  created: boolean;
}

export interface DeletePreconditions {
  uid?: string;
  resourceVersion?: string;
}

interface Stored {
  object: JsonObject;
  decoded: DecodedManifest;
}

/** Namespaces every cluster has; they cannot be deleted. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
const UNDELETABLE_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);
const NAME_SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function objectKey(type: ResourceType, namespace: string, name: string): string {
  return type.namespaced ? `${namespace}/${name}` : name;
}

function metadataOf(obj: JsonObject): JsonObject {
  const meta = obj['metadata'];
  if (isObject(meta)) return meta;
  const created: JsonObject = {};
  obj['metadata'] = created;
  return created;
}

function stringField(obj: JsonObject, key: string): string | undefined {
  const value = obj[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function nameOf(obj: JsonObject): string {
  return stringField(metadataOf(obj), 'name') ?? '';
}

export function namespaceOf(obj: JsonObject): string {
  return stringField(metadataOf(obj), 'namespace') ?? '';
}

/** RFC 3339 to the second, as the API server writes creationTimestamp. */
function timestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

class Table {
  readonly objects = new Map<string, Stored>();
  private sorted: string[] | undefined;

  keys(): readonly string[] {
    return (this.sorted ??= [...this.objects.keys()].sort());
  }

  set(key: string, stored: Stored): void {
    if (!this.objects.has(key)) this.sorted = undefined;
    this.objects.set(key, stored);
  }

  delete(key: string): void {
    if (this.objects.delete(key)) this.sorted = undefined;
  }
}

interface PendingChange {
  event: StoreEvent;
  key: string;
  stored?: Stored;
}

export class KubeStore {
  private readonly tables = new Map<ResourceType, Table>(RESOURCES.map((r) => [r, new Table()]));
  private readonly listeners = new Set<ChangeListener>();
  private readonly history: StoreEvent[] = [];
  private readonly historyLimit: number;
  private readonly now: () => Date;
  private rv = 0;
  /** Events at or below this resourceVersion are no longer kept. */
  private compacted = 0;
  private config: ProxyConfig | undefined;
  private snapshot: { rv: number; cluster: Cluster } | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: StoreOptions) {
    this.historyLimit = Math.max(1, options.historyLimit ?? 10_000);
    this.now = options.now ?? (() => new Date());
    this.config = options.config;
  }

  /** The last resourceVersion given out. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Watches from a resourceVersion below this one answer 410 Expired. */
  get oldestResourceVersion(): number {
    return this.compacted;
  }

  /**
   * Loads the starting objects (from -f or the --data-dir) without going through the API's
   * admission: they are taken as stored, validated as the file reader validates them (one error
   * listing every problem; nothing loaded on failure). Lists are read item by item; a
   * KubeProxyConfiguration among them becomes the cluster's configuration; other kinds are
   * skipped. `resourceVersion` continues a counter kept on disk. Returns the warnings.
   */
  seed(objects: readonly ManifestObject[], options: LoadOptions & { resourceVersion?: number } = {}): Warning[] {
    const entries: { type: ResourceType; object: JsonObject; decoded: DecodedManifest }[] = [];
    const total = emptyDecodedManifest();
    for (const { file, doc } of flattenLists(objects)) {
      const decoded = decodeObject(doc, file, { apiDefaults: options.allocate ?? false });
      mergeDecoded(total, decoded);
      const type = isObject(doc) ? resourceOf(doc) : undefined;
      if (type && isObject(doc) && decoded.problems.length === 0) entries.push({ type, object: { ...structuredClone(doc), apiVersion: apiVersionOf(type) }, decoded });
    }
    if (this.config && total.configs.length === 0) total.configs.push(this.config);
    const cluster = clusterFromDecoded(total, options);
    for (const entry of entries) {
      const service = entry.decoded.services[0];
      if (service && options.allocate) writeBackAllocation(entry.object, service);
    }
    this.config = cluster.config;
    this.rv = Math.max(this.rv, options.resourceVersion ?? 0);
    for (const { type, object, decoded } of entries) {
      const meta = metadataOf(object);
      if (type.namespaced && stringField(meta, 'namespace') === undefined) meta['namespace'] = 'default';
      const key = objectKey(type, namespaceOf(object), nameOf(object));
      const stored = Number(stringField(meta, 'resourceVersion'));
      if (!Number.isSafeInteger(stored) || stored <= 0 || options.resourceVersion === undefined) meta['resourceVersion'] = String(++this.rv);
      else this.rv = Math.max(this.rv, stored);
      meta['uid'] ??= randomUUID();
      meta['creationTimestamp'] ??= timestamp(this.now());
      this.table(type).set(key, { object, decoded });
    }
    // What the cluster's controllers would have written for these objects (-f with --allocate: the
    // workloads' pods; always: the EndpointSlices of Services with selectors), stored as objects.
    const derived = derivedObjects(cluster, (type, namespace, name) => this.get(type, namespace, name), timestamp(this.now()), () => randomUUID());
    for (const { type, object } of derived) {
      const meta = metadataOf(object);
      meta['resourceVersion'] = String(++this.rv);
      meta['uid'] ??= randomUUID();
      meta['creationTimestamp'] ??= timestamp(this.now());
      this.table(type).set(objectKey(type, namespaceOf(object), nameOf(object)), { object, decoded: decodeObject(object, '(controllers)', { apiDefaults: true }) });
      entries.push({ type, object, decoded: emptyDecodedManifest() });
    }
    for (const namespace of new Set([...SYSTEM_NAMESPACES, ...entries.filter((e) => e.type.namespaced).map((e) => namespaceOf(e.object))])) {
      if (!this.table(NAMESPACES).objects.has(namespace)) this.table(NAMESPACES).set(namespace, { object: this.newNamespace(namespace, ++this.rv), decoded: emptyDecodedManifest() });
    }
    this.compacted = this.rv;
    this.snapshot = undefined;
    return cluster.warnings;
  }

  /** Calls `listener` after every committed change; returns the function that stops it. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events after `resourceVersion`, oldest first; undefined when some were already dropped (410). */
  eventsAfter(resourceVersion: number): readonly StoreEvent[] | undefined {
    if (resourceVersion < this.compacted) return undefined;
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.resourceVersion <= resourceVersion) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo);
  }

  get(type: ResourceType, namespace: string, name: string): JsonObject | undefined {
    return this.table(type).objects.get(objectKey(type, namespace, name))?.object;
  }

  /** The objects of a kind, in key order (namespace/name); only one namespace's when given. */
  list(type: ResourceType, namespace?: string): JsonObject[] {
    const table = this.table(type);
    const out: JsonObject[] = [];
    const prefix = type.namespaced && namespace !== undefined ? `${namespace}/` : undefined;
    for (const key of table.keys()) {
      if (prefix !== undefined && !key.startsWith(prefix)) continue;
      out.push(table.objects.get(key)!.object);
    }
    return out;
  }

  /** One object with its typed form (as kpsim's model decoded it). */
  getDecoded(type: ResourceType, namespace: string, name: string): { object: JsonObject; decoded: DecodedManifest } | undefined {
    return this.table(type).objects.get(objectKey(type, namespace, name));
  }

  /** The objects of a kind with their typed forms (as kpsim's model decoded them), in key order. */
  listDecoded(type: ResourceType, namespace?: string): { object: JsonObject; decoded: DecodedManifest }[] {
    const table = this.table(type);
    const prefix = type.namespaced && namespace !== undefined ? `${namespace}/` : undefined;
    const out: { object: JsonObject; decoded: DecodedManifest }[] = [];
    for (const key of table.keys()) if (prefix === undefined || key.startsWith(prefix)) out.push(table.objects.get(key)!);
    return out;
  }

  /** Every stored object with its kind, kinds in RESOURCES order (for writing a fresh --data-dir). */
  entries(): { type: ResourceType; object: JsonObject }[] {
    return RESOURCES.flatMap((type) => this.list(type).map((object) => ({ type, object })));
  }

  /** The KubeProxyConfiguration the live Cluster carries (mutable: --cluster-cidr and --masquerade-all adjust it). */
  proxyConfig(): ProxyConfig | undefined {
    return this.config;
  }

  /** The live Cluster kpsim's compilers read; the same object until the next change. */
  cluster(): Cluster {
    if (this.snapshot?.rv === this.rv) return this.snapshot.cluster;
    const services: Service[] = [];
    const endpointSlices: EndpointSlice[] = [];
    const nodes: Node[] = [];
    const serviceCIDRs: string[] = [];
    const pods: Pod[] = [];
    const workloads: Workload[] = [];
    const warnings: Warning[] = [];
    for (const type of RESOURCES) {
      for (const { decoded } of this.table(type).objects.values()) {
        services.push(...decoded.services);
        endpointSlices.push(...decoded.endpointSlices);
        nodes.push(...decoded.nodes);
        serviceCIDRs.push(...decoded.serviceCIDRs);
        pods.push(...decoded.pods);
        workloads.push(...decoded.workloads);
        warnings.push(...decoded.warnings);
      }
    }
    const cluster = assembleCluster(
      { services, endpointSlices, nodes, pods, workloads, configs: this.config ? [this.config] : [], serviceCIDRs, warnings },
      { ...(this.options.admission.checkServiceCIDRs ? { serviceCIDRs: this.options.admission.serviceCIDRs } : {}), nodePortRange: this.options.admission.nodePortRange },
    );
    this.snapshot = { rv: this.rv, cluster };
    return cluster;
  }

  create(type: ResourceType, namespace: string, body: JsonObject, options: WriteOptions = {}): Promise<WriteResult> {
    return this.write(options, () => {
      const obj = this.checkBody(type, namespace, undefined, body);
      const meta = metadataOf(obj);
      if (stringField(meta, 'name') === undefined) {
        const prefix = stringField(meta, 'generateName');
        if (prefix === undefined) throw invalid(type, '', [new KpsimError('KPSIM_ERR_MODEL_MISSING_FIELD', 'name or generateName is required', { path: 'metadata.name' })]);
        meta['name'] = generateName(prefix, (n) => this.table(type).objects.has(objectKey(type, namespace, n)));
      }
      const name = nameOf(obj);
      if (this.get(type, namespace, name)) throw alreadyExists(type, name);
      return this.prepareCreate(type, namespace, name, obj, options);
    });
  }

  /** PUT: replaces the object; a stale metadata.resourceVersion is a 409 Conflict. */
  update(type: ResourceType, namespace: string, name: string, body: JsonObject, options: WriteOptions = {}): Promise<WriteResult> {
    return this.write(options, () => {
      const obj = this.checkBody(type, namespace, name, body);
      const current = this.get(type, namespace, name);
      if (!current) {
        if (!type.createOnUpdate || options.subresource) throw notFound(type, name);
        return this.prepareCreate(type, namespace, name, obj, options);
      }
      const wanted = stringField(metadataOf(obj), 'resourceVersion');
      if (wanted !== undefined && wanted !== stringField(metadataOf(current), 'resourceVersion')) throw conflict(type, name);
      return this.prepareUpdate(type, namespace, name, obj, current, options);
    });
  }

  /** PATCH of any of the four kinds; an apply patch creates a missing object. */
  patch(type: ResourceType, namespace: string, name: string, patchType: PatchType, body: Json, options: WriteOptions = {}): Promise<WriteResult> {
    return this.write(options, () => {
      const current = this.get(type, namespace, name);
      if (!current) {
        if (patchType !== 'apply' || options.subresource) throw notFound(type, name);
        const obj = this.checkBody(type, namespace, name, applyConfiguration(type, undefined, body));
        return this.prepareCreate(type, namespace, name, obj, options);
      }
      const patched = patchedObject(type, current, patchType, body);
      const obj = this.checkBody(type, namespace, name, patched);
      const wanted = stringField(metadataOf(obj), 'resourceVersion');
      if (wanted !== undefined && wanted !== stringField(metadataOf(current), 'resourceVersion')) throw conflict(type, name);
      return this.prepareUpdate(type, namespace, name, obj, current, options);
    });
  }

  /** GET of the `scale` subresource: the object as an autoscaling/v1 Scale. */
  getScale(type: ResourceType, namespace: string, name: string): JsonObject {
    const current = this.get(type, namespace, name);
    if (!current) throw notFound(type, name);
    return scaleOf(current);
  }

  /** PUT or PATCH of the `scale` subresource: the Scale (or the patch applied to it) sets spec.replicas; answers the new Scale. */
  async writeScale(type: ResourceType, namespace: string, name: string, change: { scale: Json } | { patchType: PatchType; patch: Json }, options: WriteOptions = {}): Promise<WriteResult> {
    const result = await this.write(options, () => {
      const current = this.get(type, namespace, name);
      if (!current) throw notFound(type, name);
      const scale = 'scale' in change ? change.scale : patchedObject(type, scaleOf(current), change.patchType === 'apply' ? 'merge' : change.patchType, change.patch);
      return this.prepareUpdate(type, namespace, name, scaledObject(type, current, scale), current, options);
    });
    return { ...result, object: scaleOf(result.object) };
  }

  /** DELETE: answers the object as it was; deleting a namespace deletes what is in it. */
  delete(type: ResourceType, namespace: string, name: string, preconditions: DeletePreconditions = {}, options: WriteOptions = {}): Promise<JsonObject> {
    return this.write(options, () => {
      const current = this.get(type, namespace, name);
      if (!current) throw notFound(type, name);
      const meta = metadataOf(current);
      if (preconditions.uid !== undefined && preconditions.uid !== meta['uid']) {
        throw conflict(type, name, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${String(meta['uid'])}`);
      }
      if (preconditions.resourceVersion !== undefined && preconditions.resourceVersion !== meta['resourceVersion']) {
        throw conflict(type, name, `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${String(meta['resourceVersion'])}`);
      }
      if (type === NAMESPACES && UNDELETABLE_NAMESPACES.has(name)) throw forbidden(type, name, 'this namespace may not be deleted');
      const changes: PendingChange[] = [];
      let rv = this.rv;
      if (type === NAMESPACES) {
        for (const inner of RESOURCES.filter((r) => r.namespaced)) {
          for (const obj of this.list(inner, name)) changes.push(this.deletion(inner, name, nameOf(obj), obj, ++rv, options));
        }
      }
      const change = this.deletion(type, namespace, name, current, ++rv, options);
      changes.push(change);
      return { changes, result: change.event.object };
    });
  }

  /** DELETE on a collection: every object that `matches`, each its own change. */
  deleteCollection(type: ResourceType, namespace: string | undefined, matches: (obj: JsonObject) => boolean, options: WriteOptions = {}): Promise<JsonObject[]> {
    return this.write(options, () => {
      let rv = this.rv;
      const changes = this.list(type, namespace)
        .filter(matches)
        .filter((obj) => !(type === NAMESPACES && UNDELETABLE_NAMESPACES.has(nameOf(obj))))
        .map((obj) => this.deletion(type, namespaceOf(obj), nameOf(obj), obj, ++rv, options));
      return { changes, result: changes.map((c) => c.event.object) };
    });
  }

  private table(type: ResourceType): Table {
    return this.tables.get(type)!;
  }

  /** A copy of the body with kind, apiVersion, name and namespace checked against the request. */
  private checkBody(type: ResourceType, namespace: string, name: string | undefined, body: Json): JsonObject {
    if (!isObject(body)) throw badRequest(`the body of the request is not a ${type.kind} object`);
    const obj = structuredClone(body);
    const apiVersion = obj['apiVersion'];
    const kind = obj['kind'];
    if (apiVersion !== undefined && apiVersion !== apiVersionOf(type)) throw badRequest(`the API version in the data (${String(apiVersion)}) does not match the expected API version (${apiVersionOf(type)})`);
    if (kind !== undefined && kind !== type.kind) throw badRequest(`the kind in the data (${String(kind)}) does not match the expected kind (${type.kind})`);
    obj['apiVersion'] = apiVersionOf(type);
    obj['kind'] = type.kind;
    const meta = metadataOf(obj);
    const bodyName = stringField(meta, 'name');
    if (name !== undefined) {
      if (bodyName !== undefined && bodyName !== name) throw badRequest(`the name of the object (${bodyName}) does not match the name on the URL (${name})`);
      meta['name'] = name;
    }
    if (type.namespaced) {
      const bodyNamespace = stringField(meta, 'namespace');
      if (bodyNamespace !== undefined && bodyNamespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta['namespace'] = namespace;
    } else {
      delete meta['namespace'];
    }
    delete meta['managedFields'];
    return obj;
  }

  private otherServices(type: ResourceType, key: string): () => Service[] {
    return () => {
      const out: Service[] = [];
      for (const [k, stored] of this.tables.get(RESOURCES.find((r) => r.kind === 'Service')!)!.objects) if (!(type.kind === 'Service' && k === key)) out.push(...stored.decoded.services);
      return out;
    };
  }

  private prepareCreate(type: ResourceType, namespace: string, name: string, body: JsonObject, options: WriteOptions): { changes: PendingChange[]; result: WriteResult } {
    const key = objectKey(type, namespace, name);
    const obj = prepareWrite(type, body, undefined, undefined);
    const admitted = admit(type, name, obj, undefined, options.source ?? 'api', this.otherServices(type, key), this.options.admission);
    const changes: PendingChange[] = [];
    let rv = this.rv;
    if (type.namespaced && !this.table(NAMESPACES).objects.has(namespace)) {
      // Namespaces are implicit: the first object in one creates it.
      const ns = this.newNamespace(namespace, ++rv);
      changes.push({ key: namespace, stored: { object: ns, decoded: emptyDecodedManifest() }, event: { type: 'ADDED', resource: NAMESPACES, object: ns, resourceVersion: rv } });
    }
    const meta = metadataOf(obj);
    meta['resourceVersion'] = String(++rv);
    meta['uid'] = randomUUID();
    meta['creationTimestamp'] = timestamp(this.now());
    changes.push({ key, stored: { object: obj, decoded: admitted.decoded }, event: { type: 'ADDED', resource: type, object: obj, resourceVersion: rv, ...actorOf(options) } });
    return { changes, result: { object: obj, warnings: admitted.warnings, created: true } };
  }

  private prepareUpdate(type: ResourceType, namespace: string, name: string, body: JsonObject, current: JsonObject, options: WriteOptions): { changes: PendingChange[]; result: WriteResult } {
    const key = objectKey(type, namespace, name);
    const obj = prepareWrite(type, body, current, options.subresource);
    const previous = this.table(type).objects.get(key)?.decoded.services[0];
    const admitted = admit(type, name, obj, current, options.source ?? 'api', this.otherServices(type, key), this.options.admission, previous);
    const meta = metadataOf(obj);
    if (sameExceptResourceVersion(obj, current)) {
      // A write that changes nothing is not a change: no new resourceVersion, no event (as etcd's guaranteed update).
      return { changes: [], result: { object: current, warnings: admitted.warnings, created: false } };
    }
    const rv = this.rv + 1;
    meta['resourceVersion'] = String(rv);
    return {
      changes: [{ key, stored: { object: obj, decoded: admitted.decoded }, event: { type: 'MODIFIED', resource: type, object: obj, previous: current, resourceVersion: rv, ...actorOf(options) } }],
      result: { object: obj, warnings: admitted.warnings, created: false },
    };
  }

  private deletion(type: ResourceType, namespace: string, name: string, current: JsonObject, rv: number, options: WriteOptions = {}): PendingChange {
    const last = structuredClone(current);
    metadataOf(last)['resourceVersion'] = String(rv);
    return { key: objectKey(type, namespace, name), event: { type: 'DELETED', resource: type, object: last, previous: current, resourceVersion: rv, ...actorOf(options) } };
  }

  private newNamespace(name: string, rv: number): JsonObject {
    return {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, uid: randomUUID(), resourceVersion: String(rv), creationTimestamp: timestamp(this.now()), labels: { 'kubernetes.io/metadata.name': name } },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
  }

  /**
   * Runs one write: `prepare` validates against the current state and returns the changes; they
   * are made durable (with a --data-dir), then applied and announced. Writes run one at a time,
   * so each is validated against everything committed before it.
   */
  private write<T>(options: WriteOptions, prepare: () => { changes: PendingChange[]; result: T }): Promise<T> {
    const persistence = this.options.persistence;
    const run = async (): Promise<T> => {
      const { changes, result } = prepare();
      if (options.dryRun || changes.length === 0) return result;
      if (persistence) {
        try {
          await persistence.write(changes.map((c) => c.event), changes[changes.length - 1]!.event.resourceVersion);
        } catch (e) {
          throw internalError(e instanceof KpsimError ? e.message : String(e));
        }
      }
      this.commit(changes);
      return result;
    };
    if (!persistence) {
      try {
        return Promise.resolve(runSync(prepare, options, (changes) => this.commit(changes)));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const next = this.tail.then(run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  private commit(changes: readonly PendingChange[]): void {
    for (const change of changes) {
      const table = this.table(change.event.resource);
      if (change.stored) table.set(change.key, change.stored);
      else table.delete(change.key);
      this.rv = change.event.resourceVersion;
      this.history.push(change.event);
    }
    if (this.history.length > this.historyLimit * 2) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compacted = dropped[dropped.length - 1]!.resourceVersion;
    }
    for (const change of changes) for (const listener of this.listeners) listener(change.event);
  }

  /** Drops the change history: watches from any earlier resourceVersion now answer 410 Expired. */
  compact(): void {
    this.history.length = 0;
    this.compacted = this.rv;
  }
}

/** Without a data dir a write is synchronous: nothing can interleave between validation and commit. */
function runSync<T>(prepare: () => { changes: PendingChange[]; result: T }, options: WriteOptions, commit: (changes: PendingChange[]) => void): T {
  const { changes, result } = prepare();
  if (!options.dryRun && changes.length > 0) commit(changes);
  return result;
}

function actorOf(options: WriteOptions): { actor?: string } {
  return options.actor !== undefined ? { actor: options.actor } : {};
}

function sameExceptResourceVersion(a: JsonObject, b: JsonObject): boolean {
  const strip = (o: JsonObject): JsonObject => ({ ...o, metadata: { ...metadataOf(o), resourceVersion: '' } });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

function patchedObject(type: ResourceType, current: JsonObject, patchType: PatchType, body: Json): Json {
  switch (patchType) {
    case 'merge':
      return mergePatch(current, body);
    case 'json':
      return jsonPatch(current, body);
    case 'strategic':
      return strategicMergePatch(type, current, body);
    case 'apply':
      return applyConfiguration(type, current, body);
  }
}

/** generateName: the prefix and five random characters, as names.SimpleNameGenerator makes them. */
function generateName(prefix: string, taken: (name: string) => boolean): string {
  for (;;) {
    let suffix = '';
    for (let i = 0; i < 5; i++) suffix += NAME_SUFFIX_ALPHABET[randomInt(NAME_SUFFIX_ALPHABET.length)];
    const name = `${prefix.slice(0, 58)}${suffix}`;
    if (!taken(name)) return name;
  }
}

/**
 * The served kind of a document, from its apiVersion and kind. A discovery.k8s.io/v1beta1
 * EndpointSlice (which kpsim's file reader accepts) is served as v1, as the API server converts it.
 */
export function resourceOf(doc: JsonObject): ResourceType | undefined {
  if (doc['apiVersion'] === 'discovery.k8s.io/v1beta1' && doc['kind'] === 'EndpointSlice') return RESOURCES.find((r) => r.kind === 'EndpointSlice');
  return RESOURCES.find((r) => apiVersionOf(r) === doc['apiVersion'] && r.kind === doc['kind']);
}

function flattenLists(objects: readonly ManifestObject[]): ManifestObject[] {
  const out: ManifestObject[] = [];
  for (const { file, doc } of objects) {
    if (isObject(doc) && typeof doc['kind'] === 'string' && doc['kind'].endsWith('List') && Array.isArray(doc['items'])) {
      out.push(...flattenLists(doc['items'].map((item) => ({ file, doc: item }))));
    } else if (doc !== null && doc !== undefined) {
      out.push({ file, doc });
    }
  }
  return out;
}
