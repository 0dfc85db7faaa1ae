/**
 * Watches: one hub fans the store's committed changes out to every open `?watch=1` stream
 * (apiserver's cacher, in miniature). A watch starts from a resourceVersion: unset or "0" sends a
 * synthetic ADDED for every matching object first; N replays the kept history after N, or an
 * ERROR event with a 410 Expired Status when N is older than the history (the client relists).
 * An object that stops matching a watch's selectors is DELETED for it, one that starts to is
 * ADDED. Bookmarks go to watches that allow them, every interval and when the watch times out.
 * A watcher that falls too far behind (its socket buffer past the limit) is closed rather than
 * buffered without bound; the client re-watches from its last resourceVersion.
 */
import type { JsonObject } from '../../model/fields.js';
import { type ResourceType, apiVersionOf } from './resources.js';
import type { FieldSelector, LabelSelector } from './selectors.js';
import { type Status, expired } from './status.js';
import { type ChangeType, type KubeStore, type StoreEvent, namespaceOf } from './store.js';

export type WatchEventType = ChangeType | 'BOOKMARK' | 'ERROR';

/** Where a watch's lines go: a chunked HTTP response. */
export interface WatchSink {
  /** Writes one line; false when the client is too far behind and the watch must end. */
  write(line: string): boolean;
  end(): void;
  /** Calls `listener` when the client goes away. */
  onClose(listener: () => void): void;
}

export interface WatchRequest {
  type: ResourceType;
  /** Only this namespace's objects; all when undefined. */
  namespace?: string;
  labels: LabelSelector;
  fields: FieldSelector;
  /** The query's resourceVersion: undefined or "0" starts with the current state. */
  resourceVersion?: string;
  /** sendInitialEvents=true: the current state, then a bookmark marking its end. */
  sendInitialEvents?: boolean;
  allowBookmarks: boolean;
  /** Ends the watch after this long (timeoutSeconds, or the server's request timeout). */
  timeoutMs: number;
  /** Events are cached per format: watches with the same one share each line. */
  format: string;
  /** The event's `object` as this watch shows it (the object itself, or a one-row Table). */
  render(object: JsonObject, type: WatchEventType): unknown;
  sink: WatchSink;
}

interface Watcher {
  request: WatchRequest;
  timer: NodeJS.Timeout;
  closed: boolean;
}

export interface WatchHubOptions {
  /** How often watches that allow bookmarks get one. */
  bookmarkIntervalMs?: number;
}

/** The annotation on the bookmark that ends a watch's initial events (KEP-3157, watch-list). */
export const INITIAL_EVENTS_END_ANNOTATION = 'k8s.io/initial-events-end';

function labelsOf(obj: JsonObject): Record<string, string> {
  const meta = obj['metadata'];
  const labels = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? meta['labels'] : undefined;
  return typeof labels === 'object' && labels !== null && !Array.isArray(labels) ? (labels as Record<string, string>) : {};
}

export function matchesWatch(request: Pick<WatchRequest, 'namespace' | 'labels' | 'fields'>, obj: JsonObject): boolean {
  if (request.namespace !== undefined && namespaceOf(obj) !== request.namespace) return false;
  return request.labels.matches(labelsOf(obj)) && request.fields.matches(obj);
}

function line(type: WatchEventType, object: unknown): string {
  return `{"type":"${type}","object":${JSON.stringify(object)}}\n`;
}

export class WatchHub {
  private readonly watchers = new Map<ResourceType, Set<Watcher>>();
  private readonly bookmarkTimer: NodeJS.Timeout;
  private readonly stopListening: () => void;

  constructor(private readonly store: KubeStore, options: WatchHubOptions = {}) {
    this.stopListening = store.onChange((event) => this.dispatch(event));
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), options.bookmarkIntervalMs ?? 60_000);
    this.bookmarkTimer.unref();
  }

  /** Open watches. */
  get size(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  /** Starts a watch: its initial or replayed events at once, then every change as it commits. */
  watch(request: WatchRequest): void {
    const watcher: Watcher = { request, timer: setTimeout(() => this.timeout(watcher), request.timeoutMs), closed: false };
    watcher.timer.unref();
    request.sink.onClose(() => this.remove(watcher));
    const rv = request.resourceVersion === undefined || request.resourceVersion === '' ? 0 : Number(request.resourceVersion);
    if (rv === 0) {
      for (const obj of this.store.list(request.type, request.namespace)) {
        if (matchesWatch(request, obj) && !this.send(watcher, line('ADDED', request.render(obj, 'ADDED')))) return;
      }
      if (request.sendInitialEvents && request.allowBookmarks) {
        if (!this.send(watcher, this.bookmark(request, { [INITIAL_EVENTS_END_ANNOTATION]: 'true' }))) return;
      }
    } else {
      const events = this.store.eventsAfter(rv);
      if (events === undefined) {
        const status: Status = expired(`too old resource version: ${rv} (${this.store.oldestResourceVersion})`).status;
        request.sink.write(line('ERROR', status));
        request.sink.end();
        clearTimeout(watcher.timer);
        return;
      }
      for (const event of events) {
        if (event.resource !== request.type) continue;
        const text = this.eventLine(watcher, event, new Map());
        if (text !== undefined && !this.send(watcher, text)) return;
      }
    }
    let set = this.watchers.get(request.type);
    if (!set) this.watchers.set(request.type, (set = new Set()));
    set.add(watcher);
  }

  /** Ends every open watch (server shutdown; tests that force clients to re-watch). */
  closeAll(): void {
    for (const set of this.watchers.values()) for (const watcher of [...set]) this.close(watcher);
  }

  /** Stops listening to the store and ends every watch. */
  stop(): void {
    clearInterval(this.bookmarkTimer);
    this.stopListening();
    this.closeAll();
  }

  private dispatch(event: StoreEvent): void {
    const set = this.watchers.get(event.resource);
    if (!set || set.size === 0) return;
    const cache = new Map<string, string>();
    for (const watcher of set) {
      const text = this.eventLine(watcher, event, cache);
      if (text !== undefined) this.send(watcher, text);
    }
  }

  /** The line this watcher gets for `event`, or undefined when the object is not its business. */
  private eventLine(watcher: Watcher, event: StoreEvent, cache: Map<string, string>): string | undefined {
    const request = watcher.request;
    const now = matchesWatch(request, event.object);
    const before = event.previous !== undefined && event.type !== 'DELETED' ? matchesWatch(request, event.previous) : now;
    if (!now && !before) return undefined;
    if (event.type === 'MODIFIED' && now !== before) {
      if (now) return line('ADDED', request.render(event.object, 'ADDED'));
      const last = structuredClone(event.previous!);
      (last['metadata'] as JsonObject)['resourceVersion'] = String(event.resourceVersion);
      return line('DELETED', request.render(last, 'DELETED'));
    }
    const key = `${request.format}\u0000${event.type}`;
    let text = cache.get(key);
    if (text === undefined) {
      text = line(event.type, request.render(event.object, event.type));
      cache.set(key, text);
    }
    return text;
  }

  private bookmark(request: WatchRequest, annotations?: Record<string, string>): string {
    const object = {
      kind: request.type.kind,
      apiVersion: apiVersionOf(request.type),
      metadata: { resourceVersion: String(this.store.resourceVersion), ...(annotations ? { annotations } : {}) },
    };
    return line('BOOKMARK', object);
  }

  private sendBookmarks(): void {
    for (const set of this.watchers.values()) for (const watcher of set) if (watcher.request.allowBookmarks) this.send(watcher, this.bookmark(watcher.request));
  }

  /** Writes a line; a watcher whose client cannot keep up is closed. */
  private send(watcher: Watcher, text: string): boolean {
    if (watcher.closed) return false;
    if (watcher.request.sink.write(text)) return true;
    this.close(watcher);
    return false;
  }

  private timeout(watcher: Watcher): void {
    if (watcher.request.allowBookmarks) this.send(watcher, this.bookmark(watcher.request));
    this.close(watcher);
  }

  private close(watcher: Watcher): void {
    if (watcher.closed) return;
    this.remove(watcher);
    watcher.request.sink.end();
  }

  private remove(watcher: Watcher): void {
    watcher.closed = true;
    clearTimeout(watcher.timer);
    this.watchers.get(watcher.request.type)?.delete(watcher);
  }
}
