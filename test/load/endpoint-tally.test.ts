import { test } from 'node:test';
import { EndpointTally, type ResponseOrigin, responseOrigin } from '../../src/load/endpoint-tally.js';

const originCases: { name: string; raw: string[]; want: ResponseOrigin | undefined }[] = [
  { name: 'both headers', raw: ['x-kpsim-pod', 'web-1', 'x-kpsim-endpoint', '10.244.0.5:8080'], want: { endpoint: '10.244.0.5:8080', pod: 'web-1' } },
  { name: 'names in any case', raw: ['X-Kpsim-Endpoint', '10.244.0.5:8080', 'X-KPSIM-POD', 'web-1'], want: { endpoint: '10.244.0.5:8080', pod: 'web-1' } },
  { name: 'endpoint without pod', raw: ['content-type', 'text/plain', 'x-kpsim-endpoint', '[fd00::5]:8080'], want: { endpoint: '[fd00::5]:8080', pod: '' } },
  { name: 'pod without endpoint is unattributed', raw: ['x-kpsim-pod', 'web-1'], want: undefined },
  { name: 'no headers', raw: [], want: undefined },
  { name: 'a dangling name is ignored', raw: ['x-kpsim-endpoint'], want: undefined },
];

for (const c of originCases) {
  test(`origin: ${c.name}`, (t) => {
    t.plan(1);
    t.assert.deepEqual(responseOrigin(c.raw), c.want);
  });
}

test('the tally counts per endpoint, sorted, and keeps the unattributed apart', (t) => {
  t.plan(2);
  const tally = new EndpointTally();
  const b = { endpoint: '10.0.0.2:80', pod: 'b' };
  const a = { endpoint: '10.0.0.1:80', pod: 'a' };
  for (const origin of [b, a, b, undefined, b, undefined]) tally.count(origin);
  t.assert.deepEqual(tally.counts(), [{ ...a, requests: 1 }, { ...b, requests: 3 }]);
  t.assert.equal(tally.unattributed, 2);
});
