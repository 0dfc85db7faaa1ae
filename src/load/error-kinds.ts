/**
 * What went wrong with a request, by kind: a response that is not 2xx, a request that timed out,
 * a connection reset (the proxy or backend dropped it), a refused connect, or something else.
 * Callers branch on the socket error's `code`, never on its message.
 */

export type ConnectionErrorKind = 'timeout' | 'reset' | 'refused' | 'other';

export interface ErrorCounts {
  /** Responses with a status outside 200-299. */
  non2xx: number;
  /** Requests with no response within the timeout. */
  timeouts: number;
  /** Connections reset or broken under a write (ECONNRESET, EPIPE). */
  resets: number;
  /** Connects refused (ECONNREFUSED): nothing listening. */
  refused: number;
  /** Any other socket error. */
  other: number;
  /** The sum of the above. */
  total: number;
}

const kindByCode: ReadonlyMap<string, ConnectionErrorKind> = new Map([
  ['ECONNRESET', 'reset'],
  ['EPIPE', 'reset'],
  ['ECONNABORTED', 'reset'],
  ['ECONNREFUSED', 'refused'],
  ['ETIMEDOUT', 'timeout'],
]);

/** The kind of a socket error, from its `code` (undefined and unknown codes are 'other'). */
export function classifyConnectionError(code: string | undefined): ConnectionErrorKind {
  return (code !== undefined ? kindByCode.get(code) : undefined) ?? 'other';
}

export function isSuccessStatus(status: number): boolean {
  return status >= 200 && status <= 299;
}

export function emptyErrorCounts(): ErrorCounts {
  return { non2xx: 0, timeouts: 0, resets: 0, refused: 0, other: 0, total: 0 };
}

/** Counts errors as they happen; `counts()` is a snapshot. */
export class ErrorTally {
  readonly #counts = emptyErrorCounts();

  response(status: number): void {
    if (!isSuccessStatus(status)) this.#add('non2xx');
  }

  timeout(): void {
    this.#add('timeouts');
  }

  connectionError(code: string | undefined): void {
    const kind = classifyConnectionError(code);
    this.#add(kind === 'timeout' ? 'timeouts' : kind === 'reset' ? 'resets' : kind);
  }

  counts(): ErrorCounts {
    return { ...this.#counts };
  }

  #add(field: Exclude<keyof ErrorCounts, 'total'>): void {
    this.#counts[field]++;
    this.#counts.total++;
  }
}
