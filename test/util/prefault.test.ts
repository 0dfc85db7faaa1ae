/**
 * The prefaulter (src/util/prefault.ts) against real memory and a real worker thread: what it
 * touches is mapped for the main thread (whose later writes then fault less), it never changes a
 * byte (not even one written at the same time), it sends only ranges worth a message, and a range
 * asked for again is not sent again. A text buffer asks for the pages ahead of its writer.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TextBuffer, takeTextBuffer, giveBackTextBuffer } from '../../src/iptables/save-text.js';
import { PREFAULT_MIN_BYTES, prefault, prefaultSent, prefaultSettled } from '../../src/util/prefault.js';

const PAGE = 4096;

/** The main thread's minor page faults (Linux: /proc/self/task/<pid>/stat, the 8th field after the name). */
function mainThreadFaults(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/** Faults the main thread takes writing one byte a page over [from, to) of `bytes`. */
function faultsWriting(bytes: Uint8Array, from: number, to: number): number {
  const f0 = mainThreadFaults();
  for (let i = from; i < to; i += PAGE) bytes[i] = (bytes[i]! + 1) & 0xff;
  return mainThreadFaults() - f0;
}

/** A fresh shared buffer of `bytes`, never touched. */
function freshMemory(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes);
}

const hasTaskStat = (() => {
  try {
    mainThreadFaults();
    return true;
  } catch {
    return false;
  }
})();

test('prefault: pages touched by the worker are mapped for the main thread', { skip: !hasTaskStat && 'needs /proc/self/task' }, async () => {
  const cases = [
    { name: 'a whole buffer', bytes: 16 << 20, from: 0, to: 16 << 20 },
    { name: 'from an unaligned offset', bytes: 16 << 20, from: 12345, to: 16 << 20 },
    { name: 'a middle part', bytes: 32 << 20, from: 8 << 20, to: 24 << 20 },
  ];
  for (const c of cases) {
    const memory = freshMemory(c.bytes);
    const bytes = new Uint8Array(memory);
    prefault(memory, c.from, c.to);
    await prefaultSettled();
    const start = Math.ceil(c.from / PAGE) * PAGE;
    const pages = (c.to - start) / PAGE;
    const inside = faultsWriting(bytes, start, c.to);
    assert.ok(inside < pages / 10, `${c.name}: writing ${pages} prefaulted pages took ${inside} faults on the main thread`);
    if (c.from > PAGE) {
      // The pages before the range were left alone: writing them faults about once a page.
      const before = faultsWriting(bytes, 0, start - PAGE);
      const beforePages = (start - PAGE) / PAGE;
      assert.ok(before > beforePages / 2, `${c.name}: ${beforePages} pages before the range took only ${before} faults: were they touched?`);
    }
  }
});

test('prefault: never changes a byte, even one written while it runs', async () => {
  const cases = [
    { name: 'written before', writeDuring: false },
    { name: 'written while the worker touches the same pages', writeDuring: true },
  ];
  for (const c of cases) {
    const size = 24 << 20;
    const memory = freshMemory(size);
    const bytes = new Uint8Array(memory);
    const pattern = (i: number): number => (i * 31 + 7) & 0xff;
    if (!c.writeDuring) for (let i = 0; i < size; i++) bytes[i] = pattern(i);
    prefault(memory, 0, size);
    if (c.writeDuring) for (let i = 0; i < size; i++) bytes[i] = pattern(i);
    await prefaultSettled();
    let bad = -1;
    for (let i = 0; i < size && bad < 0; i++) if (bytes[i] !== pattern(i)) bad = i;
    assert.equal(bad, -1, `${c.name}: byte ${bad} is ${bytes[bad]}, was written ${pattern(bad)}`);
  }
});

test('prefault: sends only ranges worth a message, and only what was not asked for before', async () => {
  const memory = freshMemory(64 << 20);
  const steps = [
    { name: 'a range too short', from: 0, to: PREFAULT_MIN_BYTES - PAGE, ranges: 0, bytes: 0 },
    { name: 'a first range', from: 8 << 20, to: 24 << 20, ranges: 1, bytes: 16 << 20 },
    { name: 'the same range again', from: 8 << 20, to: 24 << 20, ranges: 0, bytes: 0 },
    { name: 'a range inside it', from: 10 << 20, to: 20 << 20, ranges: 0, bytes: 0 },
    { name: 'a range reaching past its end', from: 16 << 20, to: 40 << 20, ranges: 1, bytes: 16 << 20 },
    { name: 'a range around it', from: 0, to: 64 << 20, ranges: 2, bytes: (8 << 20) + (24 << 20) },
    { name: 'past the memory\'s end (cut to it)', from: 60 << 20, to: 128 << 20, ranges: 0, bytes: 0 },
  ];
  for (const s of steps) {
    const before = prefaultSent();
    prefault(memory, s.from, s.to);
    const after = prefaultSent();
    assert.deepEqual(
      { ranges: after.ranges - before.ranges, bytes: after.bytes - before.bytes },
      { ranges: s.ranges, bytes: s.bytes },
      `${s.name}: [${s.from}, ${s.to}) sent ${after.ranges - before.ranges} ranges of ${after.bytes - before.bytes} bytes`,
    );
  }
  await prefaultSettled();
});

test('a text buffer asks for the pages ahead of its writer, not the room before its text', async () => {
  const cases = [
    {
      name: 'a big spare taken',
      make: (): TextBuffer => takeTextBuffer(16 << 20),
      // Its whole capacity lies ahead of the writer.
      least: 16 << 20,
      most: Infinity,
    },
    {
      name: 'room before the text',
      make: (): TextBuffer => TextBuffer.withRoomBefore(8 << 20, 32 << 20),
      // Only the text's 8 MB: the room is written later, and only in part (writeBefore).
      least: 8 << 20,
      most: 8 << 20,
    },
    {
      name: 'a buffer outgrowing its capacity',
      make: (): TextBuffer => {
        const b = new TextBuffer(1 << 20, true);
        b.write('x'.repeat((1 << 20) + 1));
        return b;
      },
      // Grown to 2 MB: too little to send; grown again past 8 MB it would be.
      least: 0,
      most: 0,
    },
  ];
  for (const c of cases) {
    const before = prefaultSent().bytes;
    const buffer = c.make();
    const asked = prefaultSent().bytes - before;
    assert.ok(asked >= c.least && asked <= c.most, `${c.name}: asked for ${asked} bytes, want [${c.least}, ${c.most}]`);
    if (buffer.isShared) giveBackTextBuffer(buffer);
  }
  await prefaultSettled();
});
