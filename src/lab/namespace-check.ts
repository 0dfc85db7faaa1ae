/**
 * Whether this process runs inside a given named network namespace: kpsim sends traffic only to
 * loopback or inside namespaces it made, and a process that is to send load into a lab checks
 * where it is before it sends anything.
 */
import { statSync } from 'node:fs';

export function checkInsideNamespace(ns: string): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(ns)) throw new Error(`refusing to send load: ${JSON.stringify(ns)} is not a lab namespace name`);
  let own;
  let named;
  try {
    own = statSync('/proc/self/ns/net');
    named = statSync(`/run/netns/${ns}`);
  } catch (e) {
    throw new Error(`refusing to send load: cannot tell which network namespace this is (${(e as Error).message})`);
  }
  if (own.ino !== named.ino || own.dev !== named.dev) throw new Error(`refusing to send load: this process is not inside network namespace ${ns}`);
}
