import { test } from 'node:test';
import { type ConnectionErrorKind, ErrorTally, classifyConnectionError, isSuccessStatus } from '../../src/load/error-kinds.js';

const codeCases: { code: string | undefined; want: ConnectionErrorKind }[] = [
  { code: 'ECONNRESET', want: 'reset' },
  { code: 'EPIPE', want: 'reset' },
  { code: 'ECONNABORTED', want: 'reset' },
  { code: 'ECONNREFUSED', want: 'refused' },
  { code: 'ETIMEDOUT', want: 'timeout' },
  { code: 'EHOSTUNREACH', want: 'other' },
  { code: undefined, want: 'other' },
  { code: 'constructor', want: 'other' },
];

for (const c of codeCases) {
  test(`socket error ${String(c.code)} is ${c.want}`, (t) => {
    t.plan(1);
    t.assert.equal(classifyConnectionError(c.code), c.want);
  });
}

const statusCases: { status: number; want: boolean }[] = [
  { status: 200, want: true }, { status: 204, want: true }, { status: 299, want: true },
  { status: 101, want: false }, { status: 301, want: false }, { status: 404, want: false }, { status: 503, want: false },
];

for (const c of statusCases) {
  test(`status ${c.status} is ${c.want ? '' : 'not '}a success`, (t) => {
    t.plan(1);
    t.assert.equal(isSuccessStatus(c.status), c.want);
  });
}

test('the tally counts each kind and their total', (t) => {
  t.plan(1);
  const tally = new ErrorTally();
  for (const status of [200, 200, 404, 503, 302]) tally.response(status);
  tally.timeout();
  for (const code of ['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'EWHATEVER', 'ETIMEDOUT']) tally.connectionError(code);
  t.assert.deepEqual(tally.counts(), { non2xx: 3, timeouts: 2, resets: 2, refused: 1, other: 1, total: 9 });
});
