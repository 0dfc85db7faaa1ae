/**
 * SeededDraws' draws kept inside it (nextLow31AtMost, nextScaled) are the very draws next()
 * hands out, read as the class table and the tries read them: the low 31 bits against a
 * statistic's stored limit, and nftables' numgen scaling (numgenIndex).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { numgenIndex } from '../../src/nftables/numgen.js';
import { SeededDraws, seededUint32 } from '../../src/util/random.js';

const LIMITS: readonly { name: string; limit: number }[] = [
  { name: 'never (-1)', limit: -1 },
  { name: 'a third of 2^31', limit: Math.floor(0x80000000 / 3) - 1 },
  { name: 'a half', limit: 0x3fffffff },
  { name: 'always (2^31 - 1)', limit: 0x7fffffff },
];

for (const { name, limit } of LIMITS) {
  test(`SeededDraws.nextLow31AtMost: ${name}, as next() & 0x7fffffff <= limit`, () => {
    for (let seed = 0; seed < 300; seed++) {
      const kept = new SeededDraws().reset(seed);
      const next = seededUint32(seed);
      for (let k = 0; k < 4; k++) {
        const draw = next();
        assert.equal(kept.nextLow31AtMost(limit), (draw & 0x7fffffff) <= limit, `seed ${seed}, draw ${k}: 0x${draw.toString(16)}`);
      }
    }
  });
}

for (const mod of [1, 2, 3, 7, 10, 1000, 65536]) {
  test(`SeededDraws.nextScaled(${mod}) is numgenIndex of the draw`, () => {
    for (let seed = 0; seed < 300; seed++) {
      const kept = new SeededDraws().reset(seed);
      const next = seededUint32(seed);
      for (let k = 0; k < 3; k++) {
        const draw = next();
        assert.equal(kept.nextScaled(mod), numgenIndex(draw, mod), `seed ${seed}, draw ${k}: 0x${draw.toString(16)}`);
      }
    }
  });
}
