/**
 * Choosing the endpoint for a retried dial.
 *
 * kube-proxy's userspace mode retried a failed dial on the next endpoint and, for a client with
 * session affinity, forgot that client's endpoint first (sessionAffinityReset), so the retry and
 * later connections go elsewhere. With IPVS schedulers the same is had without a private API:
 * the endpoints that just failed are quiesced (weight 0) for the length of one `connect`. A
 * quiesced dest is skipped by every scheduler, and with expire_quiescent_template set (kube-proxy
 * sets it for IPVS mode) the client's persistence template to it is dropped and a new one made.
 * Weights are restored at once, so other clients do not notice. Only the retry path pays for this.
 */
import type { VirtualService } from '../ipvs/virtual-service.js';

/**
 * `vs.connect(client)` with the dests in `avoid` out of the running; undefined when the
 * scheduler finds no other dest (then the caller may bind one itself).
 */
export function connectAvoiding(vs: VirtualService, client: string | undefined, avoid: readonly string[]): string | undefined {
  if (avoid.length === 0) return vs.connect(client, 'active');
  const weights = new Map(vs.dests().map((d) => [d.addr, d.weight]));
  const quiesced: { addr: string; weight: number }[] = [];
  for (const addr of avoid) {
    const weight = weights.get(addr);
    if (weight === undefined || weight === 0) continue;
    quiesced.push({ addr, weight });
    vs.setWeight(addr, 0);
  }
  try {
    return vs.connect(client, 'active');
  } finally {
    for (const { addr, weight } of quiesced) vs.setWeight(addr, weight);
  }
}

/**
 * The dests a retry must avoid: every one tried so far while an untried one is left, else only
 * the last one tried (never the same endpoint twice in a row when another exists), else none.
 */
export function destsToAvoid(candidates: readonly string[], tried: readonly string[]): string[] {
  if (tried.length === 0) return [];
  const untried = candidates.filter((addr) => !tried.includes(addr));
  if (untried.length > 0) return candidates.filter((addr) => tried.includes(addr));
  const last = tried[tried.length - 1]!;
  return candidates.length > 1 ? [last] : [];
}
