/**
 * Which backend answered: kpsim's backend pods stamp every response with `x-kpsim-pod` and
 * `x-kpsim-endpoint`, so the load generator can count requests per endpoint without asking the
 * proxy. A response without them (a peer proxy's own error page, a foreign server) is counted as
 * unattributed rather than guessed.
 */

export const POD_HEADER = 'x-kpsim-pod';
export const ENDPOINT_HEADER = 'x-kpsim-endpoint';

export interface ResponseOrigin {
  /** "ip:port" of the endpoint, as the backend reports it. */
  endpoint: string;
  /** The pod's name; "" when the backend sent none. */
  pod: string;
}

export interface EndpointRequestCount extends ResponseOrigin {
  requests: number;
}

/**
 * The origin from raw headers as HTTP parsers give them: a flat [name, value, name, value, ...]
 * list with names in any case. undefined when the endpoint header is missing.
 */
export function responseOrigin(rawHeaders: readonly string[]): ResponseOrigin | undefined {
  let endpoint: string | undefined;
  let pod = '';
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name === ENDPOINT_HEADER) endpoint = rawHeaders[i + 1]!;
    else if (name === POD_HEADER) pod = rawHeaders[i + 1]!;
  }
  return endpoint === undefined ? undefined : { endpoint, pod };
}

/** Requests counted per endpoint, plus those no endpoint claimed. */
export class EndpointTally {
  readonly #byEndpoint = new Map<string, EndpointRequestCount>();
  #unattributed = 0;

  count(origin: ResponseOrigin | undefined): void {
    if (origin === undefined) {
      this.#unattributed++;
      return;
    }
    const entry = this.#byEndpoint.get(origin.endpoint);
    if (entry === undefined) this.#byEndpoint.set(origin.endpoint, { ...origin, requests: 1 });
    else entry.requests++;
  }

  get unattributed(): number {
    return this.#unattributed;
  }

  /** Sorted by endpoint text, as kube-proxy sorts endpoints. */
  counts(): EndpointRequestCount[] {
    return [...this.#byEndpoint.values()].map((e) => ({ ...e })).sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  }
}
