/**
 * twos, power of two choices (net/netfilter/ipvs/ip_vs_twos.c). total = sum of the weights of the
 * available dests (weight > 0, not OVERLOAD) plus 1; two random numbers r1, r2 in [0, total) are
 * drawn (prandom_u32() % total). Walking the available dests in list order and subtracting each
 * weight from both, choice 1 is the dest where r1 first drops to <= 0, choice 2 likewise for r2.
 * Choice 2 is returned when weight2 * overhead1 > weight1 * overhead2 (it is less loaded per
 * weight), choice 1 otherwise.
 */
import { connOverhead, isAvailable, type Dest, type Scheduler, type ServiceScheduler } from './types.js';

export const twos: Scheduler = {
  name: 'twos',
  init(service, context): ServiceScheduler {
    const randomU32 = (): number => Math.floor(context.rng() * 0x100000000) >>> 0;
    return {
      schedule(): Dest | undefined {
        const list = service.dests;
        let totalWeight = 0;
        for (let dest = list.first(); dest !== undefined; dest = list.after(dest)) if (isAvailable(dest)) totalWeight += dest.weight;
        if (totalWeight === 0) return undefined;
        totalWeight += 1;
        let r1 = randomU32() % totalWeight;
        let r2 = randomU32() % totalWeight;

        let choice1: Dest | undefined;
        let choice2: Dest | undefined;
        for (let dest = list.first(); dest !== undefined; dest = list.after(dest)) {
          if (!isAvailable(dest)) continue;
          r1 -= dest.weight;
          r2 -= dest.weight;
          if (r1 <= 0 && choice1 === undefined) choice1 = dest;
          if (r2 <= 0 && choice2 === undefined) choice2 = dest;
          if (choice1 !== undefined && choice2 !== undefined) break;
        }
        // r1, r2 <= sum of weights, so both choices are always made.
        if (choice1 === undefined || choice2 === undefined) throw new Error('twos: a weighted choice was not made');
        return choice2.weight * connOverhead(choice1) > choice1.weight * connOverhead(choice2) ? choice2 : choice1;
      },
    };
  },
};
