/**
 * kube-proxy's BaseEndpointInfo (pkg/proxy/endpoint.go) for one endpoint of one slice port, as
 * the tracker makes it from the slice. A big cluster has one for each endpoint of each service
 * port (150k on a 150k-pod cluster), every one kept for as long as the cluster is: so each holds
 * only what is its own (its "ip:port" text, port and whether it is on the proxier's node) and
 * its address, and reads the rest, which the slice's ports share, from the slice's endpoint.
 * That is 64 bytes an endpoint instead of 120 with every field copied in: less to allocate, and
 * less for the young-generation collections to copy while a cluster's endpoints are made (all of
 * them survive). The slice's endpoints stay reachable from the endpoints made of them.
 *
 * Every field of EndpointInfo reads as it did when copied (the slice's objects are never changed
 * once decoded): `ready` is the condition or true when unset, `podName` the targetRef's name, and
 * so on. Copies made by spreading one carry its own fields only: make another with `withLocal`.
 */
import type { EndpointInfo } from '../model/proxy-info.js';
import type { Endpoint } from '../model/types.js';

export class SliceEndpointInfo implements EndpointInfo {
  /**
   * The slice endpoint's first address (kube-proxy uses that one only). Kept here, not read
   * through `source`: every mode reads it for every endpoint it writes a rule or a dest for, and
   * a second object scattered elsewhere in the heap per read costs cache misses.
   */
  readonly ip: string;
  /** "ip:port" or "[ip]:port". */
  readonly endpoint: string;
  readonly port: number;
  readonly isLocal: boolean;
  /** The slice's endpoint this one stands for (with its other ports' endpoints). */
  readonly source: Endpoint;

  constructor(source: Endpoint, endpoint: string, port: number, isLocal: boolean) {
    this.ip = source.addresses[0]!;
    this.endpoint = endpoint;
    this.port = port;
    this.isLocal = isLocal;
    this.source = source;
  }

  /** The same endpoint, local to the proxier's node or not. */
  withLocal(isLocal: boolean): SliceEndpointInfo {
    return new SliceEndpointInfo(this.source, this.endpoint, this.port, isLocal);
  }

  /** An unset condition reads as kube-proxy reads a nil one. */
  get ready(): boolean {
    return this.source.conditions.ready ?? true;
  }

  get serving(): boolean {
    return this.source.conditions.serving ?? true;
  }

  get terminating(): boolean {
    return this.source.conditions.terminating ?? false;
  }

  get zoneHints(): ReadonlySet<string> {
    return hintSet(this.source.hints?.forZones);
  }

  get nodeHints(): ReadonlySet<string> {
    return hintSet(this.source.hints?.forNodes);
  }

  get nodeName(): string | undefined {
    return this.source.nodeName;
  }

  get zone(): string | undefined {
    return this.source.zone;
  }

  /** The pod name from targetRef, when known. */
  get podName(): string | undefined {
    return this.source.targetRef?.name;
  }
}

/** One empty set for every endpoint without hints (most of them). */
const NO_HINTS: ReadonlySet<string> = new Set();

/** Each hint list's set, made on first read: the same set every time a list is read. */
const hintSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function hintSet(names: readonly string[] | undefined): ReadonlySet<string> {
  if (names === undefined || names.length === 0) return NO_HINTS;
  let set = hintSets.get(names);
  if (set === undefined) hintSets.set(names, (set = new Set(names)));
  return set;
}
