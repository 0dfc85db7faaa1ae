import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { startProgressBar } from '../../src/load/progress.js';

/** A stream that says it is (or is not) a terminal, and keeps what was written to it. */
function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; written: () => string } {
  const chunks: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  Object.assign(stream, { isTTY, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { stream: stream as unknown as NodeJS.WriteStream, written: () => chunks.join('') };
}

test('no progress bar when the stream is not a terminal', async (t) => {
  t.plan(1);
  const { stream, written } = fakeStream(false);
  const bar = startProgressBar('load 127.10.0.7:80', 2, stream);
  bar.listener({ elapsedSeconds: 1, responses: 500 });
  bar.stop();
  await new Promise((resolve) => setImmediate(resolve));
  t.assert.equal(written(), '');
});

test('on a terminal the bar shows the label, responses and rate, and stops once', async (t) => {
  t.plan(3);
  const { stream, written } = fakeStream(true);
  const bar = startProgressBar('load 127.10.0.7:80', 2, stream);
  bar.listener({ elapsedSeconds: 1, responses: 500 });
  bar.stop();
  bar.stop();
  await new Promise((resolve) => setImmediate(resolve));
  t.assert.match(written(), /load 127\.10\.0\.7:80 \[/);
  t.assert.match(written(), /500 responses/);
  t.assert.match(written(), /500 req\/s/);
});
