/**
 * What a proxier works out about a service port once and keeps for every sync after, as
 * kube-proxy keeps a servicePortInfo (with its chain names) from the change that made it until
 * the next change. A ProxierServicePort is never changed once made (a change makes a new one),
 * so a value kept for the object holds for as long as the object lives; the port's info and
 * categorised endpoints are checked too, so a port put together from parts of another is never
 * answered with that other's value.
 */
import type { ProxierServicePort } from './types.js';

export class KeptPerServicePort<T> {
  readonly #kept = new WeakMap<ProxierServicePort, { readonly info: ProxierServicePort['info']; readonly categorized: ProxierServicePort['categorized']; readonly value: T }>();

  constructor(private readonly make: (sp: ProxierServicePort) => T) {}

  /** make(sp), once for each port (kept while the port lives). */
  get(sp: ProxierServicePort): T {
    const kept = this.#kept.get(sp);
    if (kept !== undefined && kept.info === sp.info && kept.categorized === sp.categorized) return kept.value;
    const value = this.make(sp);
    this.#kept.set(sp, { info: sp.info, categorized: sp.categorized, value });
    return value;
  }
}
