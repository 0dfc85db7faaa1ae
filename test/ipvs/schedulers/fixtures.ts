/**
 * Builders for the scheduler tables: dests are named by letters (A = 10.0.0.1:80, B = 10.0.0.2:80,
 * ...) so that pick sequences read like the kernel comments' worked examples.
 */
import { createScheduler, type VirtualService, type VirtualServiceOptions } from '../../../src/ipvs/virtual-service.js';

export function addrOf(name: string): string {
  return `10.0.0.${name.charCodeAt(0) - 64}:80`;
}

/** The letter of a dest addr, "-" for "no destination available". */
export function nameOf(addr: string | null | undefined): string {
  if (addr === undefined || addr === null) return '-';
  const lastOctet = Number(addr.split(':')[0]!.split('.')[3]);
  return String.fromCharCode(64 + lastOctet);
}

export interface DestRow {
  readonly name: string;
  readonly weight: number;
  readonly active?: number;
  readonly inactive?: number;
  readonly upper?: number;
}

/** A service with the dests added in the given order (so the LAST one is at the front). */
export function serviceWith(scheduler: string, adds: readonly DestRow[], opts: VirtualServiceOptions = {}): VirtualService {
  const vs = createScheduler(scheduler, opts);
  for (const row of adds) {
    vs.addDest({
      addr: addrOf(row.name), weight: row.weight, activeConns: row.active, inactConns: row.inactive, upperThreshold: row.upper,
    });
  }
  return vs;
}

/** A compact row list: "A1 B3 C0" = A weight 1, B weight 3, C weight 0, added in that order. */
export function rows(text: string): DestRow[] {
  return text.split(/\s+/).filter(Boolean).map((token) => ({ name: token[0]!, weight: Number(token.slice(1)) }));
}

/** One step of a script run against a service. */
export type Step =
  | { readonly pick: number; readonly client?: string }
  | { readonly connect: number; readonly client?: string }
  | { readonly add: DestRow }
  | { readonly remove: string }
  | { readonly weight: readonly [string, number] }
  | { readonly close: string }
  | { readonly expire: readonly [string, 'active' | 'inactive'] }
  | { readonly advance: number };

/** Run the steps; picks and connects append their letters, steps in between add a "|". */
export function run(vs: VirtualService, steps: readonly Step[]): string {
  const out: string[] = [];
  for (const step of steps) {
    if ('pick' in step) {
      for (let i = 0; i < step.pick; i++) out.push(nameOf(vs.pick(step.client)));
    } else if ('connect' in step) {
      for (let i = 0; i < step.connect; i++) out.push(nameOf(vs.connect(step.client)));
    } else {
      if (out.length > 0 && out[out.length - 1] !== '|') out.push('|');
      if ('add' in step) vs.addDest({ addr: addrOf(step.add.name), weight: step.add.weight, upperThreshold: step.add.upper });
      else if ('remove' in step) vs.removeDest(addrOf(step.remove));
      else if ('weight' in step) vs.setWeight(addrOf(step.weight[0]), step.weight[1]);
      else if ('close' in step) vs.close(addrOf(step.close));
      else if ('expire' in step) vs.expire(addrOf(step.expire[0]), step.expire[1]);
      else vs.advance(step.advance);
    }
  }
  return out.join(' ');
}
