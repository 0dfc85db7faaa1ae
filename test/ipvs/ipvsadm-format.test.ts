/**
 * The ipvsadm formatter against real ipvsadm 1.31 output (test/fixtures/ipvsadm-1.31-sample.txt:
 * verbatim stdout of ipvsadm 1.31, Debian 1:1.31-1+b1, on Linux 6.1; its header says how it was
 * made): the test builds the same table, with the same counters, as the capture and compares every
 * block byte for byte, trailing spaces included. Then smaller tables for what the capture does not
 * show: K/M/G/T scaling, IPv6, masks, flags, and the sort quirk.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type IpvsConnectionRow,
  addressWords,
  compareDests,
  compareServices,
  formatIpvsadmConnections,
  formatIpvsadmList,
  formatIpvsadmSave,
  formatIpvsadmTimeout,
  formatLargeNumber,
  kernelServiceOrder,
  sortDests,
  sortLikeGlibc,
  sortServices,
} from '../../src/ipvs/ipvsadm-format.js';
import { ipToWords } from '../../src/util/ip.js';
import { seededRng } from '../../src/util/random.js';
import {
  type IpvsStats,
  type IpvsTable,
  type RealServer,
  type VirtualServer,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
  realServer,
  virtualServer,
} from '../../src/ipvs/table.js';
import { repoRoot } from '../helpers/cluster-builders.js';

const SAMPLE_PATH = join(repoRoot(), 'test', 'fixtures', 'ipvsadm-1.31-sample.txt');

/** The capture's blocks by their "==== title ====" marker; each block's text ends with a newline. */
function readSampleBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string>();
  let title: string | undefined;
  let lines: string[] = [];
  const flush = (): void => {
    if (title === undefined) return;
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    blocks.set(title, `${lines.join('\n')}\n`);
  };
  for (const line of text.split('\n')) {
    const marker = /^==== (.*) ====$/.exec(line);
    if (marker) {
      flush();
      title = marker[1]!;
      lines = [];
    } else if (title !== undefined) {
      lines.push(line);
    }
  }
  flush();
  return blocks;
}

type Counters = [number, number, number, number, number];
const stats = ([conns, inPkts, outPkts, inBytes, outBytes]: Counters): IpvsStats => ({ conns, inPkts, outPkts, inBytes, outBytes });
const rates = ([cps, inPps, outPps, inBps, outBps]: Counters) => ({ cps, inPps, outPps, inBps, outBps });

interface DestRow { ip: string; port: number; weight: number; active: number; inact: number; persist: number; stats: Counters; rates: Counters }
const dest = (d: DestRow): RealServer =>
  realServer({ ip: d.ip, port: d.port, weight: d.weight, activeConns: d.active, inactConns: d.inact, persistConns: d.persist, stats: stats(d.stats), rates: rates(d.rates) });

/**
 * The capture's table, services in an order of creation and dests in kernel list order (front
 * first) as the capture's --nosort block shows them; counters from its other blocks.
 */
function sampleTable(): IpvsTable {
  const zero: Counters = [0, 0, 0, 0, 0];
  const persistent = { flags: SVC_F_PERSISTENT, timeoutSeconds: 10800 };
  const services: VirtualServer[] = [
    virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 53, scheduler: 'rr', stats: stats([1, 3, 2, 164, 112]), rates: rates([0, 0, 0, 12, 8]), dests: [
      dest({ ip: '10.244.0.2', port: 53, weight: 1, active: 0, inact: 1, persist: 0, stats: [1, 3, 2, 164, 112], rates: [0, 0, 0, 12, 8] }),
      dest({ ip: '10.244.0.3', port: 53, weight: 1, active: 0, inact: 0, persist: 0, stats: zero, rates: zero }),
    ] }),
    virtualServer({ protocol: 'UDP', address: '10.96.0.10', port: 53, scheduler: 'rr', stats: stats([5, 5, 5, 145, 285]), rates: rates([0, 0, 0, 10, 20]), dests: [
      dest({ ip: '10.244.0.2', port: 53, weight: 1, active: 0, inact: 3, persist: 0, stats: [3, 3, 3, 87, 171], rates: [0, 0, 0, 6, 12] }),
      dest({ ip: '10.244.0.3', port: 53, weight: 1, active: 0, inact: 2, persist: 0, stats: [2, 2, 2, 58, 114], rates: [0, 0, 0, 4, 8] }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.96.100.20', port: 80, scheduler: 'rr', ...persistent, stats: stats([3, 7, 4, 388, 232]), rates: rates([0, 0, 0, 27, 16]), dests: [
      dest({ ip: '10.244.1.5', port: 8080, weight: 1, active: 2, inact: 0, persist: 1, stats: [2, 4, 2, 224, 120], rates: [0, 0, 0, 16, 8] }),
      dest({ ip: '10.244.2.7', port: 8080, weight: 1, active: 0, inact: 1, persist: 1, stats: [1, 3, 2, 164, 112], rates: [0, 0, 0, 12, 8] }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.0.100.50', port: 443, scheduler: 'rr', stats: stats([2, 5, 3, 276, 172]), rates: rates([0, 0, 0, 19, 12]), dests: [
      dest({ ip: '10.244.2.8', port: 8443, weight: 0, active: 1, inact: 0, persist: 0, stats: [1, 2, 1, 112, 60], rates: [0, 0, 0, 8, 4] }),
      dest({ ip: '10.244.3.4', port: 8443, weight: 1, active: 0, inact: 1, persist: 0, stats: [1, 3, 2, 164, 112], rates: [0, 0, 0, 12, 8] }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.96.0.1', port: 443, scheduler: 'rr', stats: stats([3, 7, 4, 388, 232]), rates: rates([0, 0, 0, 24, 15]), dests: [
      dest({ ip: '10.0.0.10', port: 6443, weight: 1, active: 2, inact: 1, persist: 0, stats: [3, 7, 4, 388, 232], rates: [0, 0, 0, 24, 15] }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.96.200.30', port: 443, scheduler: 'rr', stats: stats([2, 4, 2, 224, 120]), rates: rates([0, 0, 0, 16, 8]), dests: [
      dest({ ip: '10.244.2.8', port: 8443, weight: 0, active: 1, inact: 0, persist: 0, stats: [1, 2, 1, 112, 60], rates: [0, 0, 0, 8, 4] }),
      dest({ ip: '10.244.3.4', port: 8443, weight: 1, active: 1, inact: 0, persist: 0, stats: [1, 2, 1, 112, 60], rates: [0, 0, 0, 8, 4] }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.0.0.10', port: 31443, scheduler: 'rr', dests: [
      dest({ ip: '10.244.2.8', port: 8443, weight: 0, active: 0, inact: 0, persist: 0, stats: zero, rates: zero }),
      dest({ ip: '10.244.3.4', port: 8443, weight: 1, active: 0, inact: 0, persist: 0, stats: zero, rates: zero }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.0.0.10', port: 30080, scheduler: 'rr', ...persistent, stats: stats([1, 2, 1, 112, 60]), rates: rates([0, 0, 0, 8, 4]), dests: [
      dest({ ip: '10.244.1.5', port: 8080, weight: 1, active: 1, inact: 0, persist: 1, stats: [1, 2, 1, 112, 60], rates: [0, 0, 0, 8, 4] }),
      dest({ ip: '10.244.2.7', port: 8080, weight: 1, active: 0, inact: 0, persist: 0, stats: zero, rates: zero }),
    ] }),
    virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 9153, scheduler: 'rr', stats: stats([1, 2, 1, 112, 60]), rates: rates([0, 0, 0, 8, 4]), dests: [
      dest({ ip: '10.244.0.2', port: 9153, weight: 1, active: 1, inact: 0, persist: 0, stats: [1, 2, 1, 112, 60], rates: [0, 0, 0, 8, 4] }),
      dest({ ip: '10.244.0.3', port: 9153, weight: 1, active: 0, inact: 0, persist: 0, stats: zero, rates: zero }),
    ] }),
  ];
  return { services };
}

/** The capture's `ipvsadm -Lnc` rows, in its order. */
function sampleConnections(): IpvsConnectionRow[] {
  const row = (protocol: 'TCP' | 'UDP', expiresSeconds: number, state: string, client: string, virt: string, dst: string): IpvsConnectionRow => {
    const split = (s: string): [string, number] => { const i = s.lastIndexOf(':'); return [s.slice(0, i), Number(s.slice(i + 1))]; };
    const [clientIP, clientPort] = split(client);
    const [virtualIP, virtualPort] = split(virt);
    const [destIP, destPort] = split(dst);
    return { protocol, expiresSeconds, state, clientIP, clientPort, virtualIP, virtualPort, destIP, destPort };
  };
  return [
    row('TCP', 893, 'ESTABLISHED', '10.244.1.10:40032', '10.0.100.50:443', '10.244.2.8:8443'),
    row('UDP', 293, 'UDP', '10.244.1.9:41105', '10.96.0.10:53', '10.244.0.2:53'),
    row('TCP', 10793, 'ASSURED', '10.244.3.21:0', '10.0.0.10:30080', '10.244.1.5:8080'),
    row('TCP', 10793, 'ASSURED', '10.244.3.21:0', '10.96.100.20:80', '10.244.2.7:8080'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.10:40030', '10.96.200.30:443', '10.244.2.8:8443'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.10:40002', '10.96.0.1:443', '10.0.0.10:6443'),
    row('TCP', 10793, 'ASSURED', '10.244.1.9:0', '10.96.100.20:80', '10.244.1.5:8080'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.9:40001', '10.96.0.1:443', '10.0.0.10:6443'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.10:40031', '10.96.200.30:443', '10.244.3.4:8443'),
    row('UDP', 293, 'UDP', '10.244.1.9:41101', '10.96.0.10:53', '10.244.0.2:53'),
    row('UDP', 293, 'UDP', '10.244.1.9:41103', '10.96.0.10:53', '10.244.0.2:53'),
    row('UDP', 293, 'UDP', '10.244.1.9:41102', '10.96.0.10:53', '10.244.0.3:53'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.9:40020', '10.96.100.20:80', '10.244.1.5:8080'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.9:40011', '10.96.0.10:9153', '10.244.0.2:9153'),
    row('TCP', 53, 'CLOSE_WAIT', '10.244.1.9:40003', '10.96.0.1:443', '10.0.0.10:6443'),
    row('TCP', 893, 'ESTABLISHED', '10.244.1.9:40021', '10.96.100.20:80', '10.244.1.5:8080'),
    row('TCP', 893, 'ESTABLISHED', '10.244.3.21:40023', '10.0.0.10:30080', '10.244.1.5:8080'),
    row('TCP', 53, 'CLOSE_WAIT', '10.244.1.10:40033', '10.0.100.50:443', '10.244.3.4:8443'),
    row('TCP', 53, 'CLOSE_WAIT', '10.244.1.9:40010', '10.96.0.10:53', '10.244.0.2:53'),
    row('UDP', 293, 'UDP', '10.244.1.9:41104', '10.96.0.10:53', '10.244.0.3:53'),
    row('TCP', 53, 'CLOSE_WAIT', '10.244.3.21:40022', '10.96.100.20:80', '10.244.2.7:8080'),
  ];
}

const sampleCases: { block: string; render: (table: IpvsTable) => string }[] = [
  { block: 'ipvsadm -Ln', render: (t) => formatIpvsadmList(t) },
  { block: 'ipvsadm -Ln --nosort', render: (t) => formatIpvsadmList(t, { nosort: true }) },
  { block: 'ipvsadm -Ln --stats', render: (t) => formatIpvsadmList(t, { stats: true }) },
  { block: 'ipvsadm -Ln --rate', render: (t) => formatIpvsadmList(t, { rate: true }) },
  { block: 'ipvsadm -Ln --persistent-conn', render: (t) => formatIpvsadmList(t, { persistentConn: true }) },
  { block: 'ipvsadm -Ln --thresholds', render: (t) => formatIpvsadmList(t, { thresholds: true }) },
  { block: 'ipvsadm -Ln --stats --exact', render: (t) => formatIpvsadmList(t, { stats: true, exact: true }) },
  { block: 'ipvsadm -Sn', render: (t) => formatIpvsadmSave(t) },
  { block: 'ipvsadm -Lnc', render: () => formatIpvsadmConnections(sampleConnections()) },
  { block: 'ipvsadm -L --timeout', render: () => formatIpvsadmTimeout(900, 120, 300) },
  {
    block: 'extra services added afterwards (ipvsadm -A -u 10.96.0.99:53 -s sh -b sh-fallback,sh-port), then: ipvsadm -Ln | tail -4',
    render: (t) => {
      const extra = virtualServer({ protocol: 'UDP', address: '10.96.0.99', port: 53, scheduler: 'sh', flags: SVC_F_SCHED1 | SVC_F_SCHED2 });
      const lines = formatIpvsadmList({ services: [...t.services, extra] }).split('\n').slice(0, -1);
      return `${lines.slice(-4).join('\n')}\n`;
    },
  },
];

// The capture is part of the repository: a missing file is a failure, never a skip.
const sample = readSampleBlocks(readFileSync(SAMPLE_PATH, 'utf8'));

test('the capture has every block the formatter is compared with, trailing spaces intact', () => {
  for (const c of sampleCases) assert.ok(sample.has(c.block), `block "${c.block}" missing from ${SAMPLE_PATH}`);
  // ipvsadm prints a real server's last column with %-10u: an editor that strips trailing
  // spaces would make every comparison below fail for the wrong reason, so say it here.
  const dests = sample.get('ipvsadm -Ln')!.split('\n').filter((l) => l.startsWith('  -> 10.'));
  assert.ok(dests.length > 0 && dests.every((l) => l.endsWith(' '.repeat(9))), `real-server lines of ${SAMPLE_PATH} lost their trailing spaces:\n${dests.join('\n')}`);
});

for (const c of sampleCases) {
  test(`byte for byte like ipvsadm 1.31: ${c.block}`, () => {
    const want = sample.get(c.block);
    assert.ok(want !== undefined && want.length > 0, `block "${c.block}" missing from the capture`);
    assert.equal(c.render(sampleTable()), want);
  });
}

// ---------------------------------------------------------------- what the capture does not show

const largeNumberCases: { value: number; exact?: boolean; want: string }[] = [
  { value: 0, want: '        0' },
  { value: 99_999_999, want: ' 99999999' },
  { value: 100_000_000, want: '  100000K' },
  { value: 999_999_999, want: '  999999K' },
  { value: 1_000_000_000, want: '    1000M' },
  { value: 99_999_999_999, want: '   99999M' },
  { value: 100_000_000_000, want: '     100G' },
  { value: 100_000_000_000_000, want: '     100T' },
  { value: 12_345_678, exact: true, want: ' 12345678' },
  { value: 123_456_789, exact: true, want: ' 123456789' },
];
for (const c of largeNumberCases) {
  test(`print_largenum(${c.value}${c.exact ? ', --exact' : ''}) is ${JSON.stringify(c.want)}`, () => {
    assert.equal(formatLargeNumber(c.value, c.exact), c.want);
  });
}

test('the --stats columns scale each counter on its own', () => {
  const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.1', port: 443, scheduler: 'rr', stats: stats([5, 123_456_789, 2_000_000_000, 150_000_000_000, 3]) });
  const line = formatIpvsadmList({ services: [vs] }, { stats: true }).split('\n')[3];
  assert.equal(line, 'TCP  10.96.0.1:443                       5  123456K    2000M     150G        3');
});

test('service flags: sh names its flags, other schedulers show flag-N; mask, pe and ops', () => {
  const table: IpvsTable = { services: [
    virtualServer({ protocol: 'TCP', address: '10.1.0.1', port: 80, scheduler: 'mh', flags: SVC_F_SCHED2 | SVC_F_PERSISTENT, timeoutSeconds: 60, netmaskPrefix: 24 }),
    virtualServer({ protocol: 'UDP', address: '10.1.0.2', port: 53, scheduler: 'rr', flags: SVC_F_SCHED1 | SVC_F_ONEPACKET }),
    virtualServer({ protocol: 'SCTP', address: '10.1.0.3', port: 9, scheduler: 'wlc', flags: SVC_F_PERSISTENT, timeoutSeconds: 300, pe: 'sip' }),
  ] };
  assert.deepEqual(formatIpvsadmList(table).split('\n').slice(3, -1), [
    'TCP  10.1.0.1:80 mh (mh-port) persistent 60 mask 255.255.255.0',
    'UDP  10.1.0.2:53 rr (flag-1) ops',
    'SCTP 10.1.0.3:9 wlc persistent 300 pe sip',
  ]);
  assert.deepEqual(formatIpvsadmSave(table).split('\n').slice(0, -1), [
    '-A -t 10.1.0.1:80 -s mh -p 60 -M 255.255.255.0 -b mh-port',
    '-A -u 10.1.0.2:53 -s rr -o -b flag-1',
    '-A --sctp-service 10.1.0.3:9 -s wlc -p 300 --pe sip',
  ]);
});

test('IPv6 services and dests are bracketed, never cut, and the mask is a length', () => {
  const vs = virtualServer({ protocol: 'TCP', address: 'fd00:10:96::70', port: 80, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeoutSeconds: 10800, netmaskPrefix: 64, dests: [
    realServer({ ip: 'fd00:10:244:abcd:ef01:2345:6789:14', port: 8080 }),
  ] });
  assert.deepEqual(formatIpvsadmList({ services: [vs] }).split('\n').slice(3, -1), [
    'TCP  [fd00:10:96::70]:80 rr persistent 10800 mask 64',
    '  -> [fd00:10:244:abcd:ef01:2345:6789:14]:8080 Masq    1      0          0         ',
  ]);
});

test('the longest numeric IPv4 names fit ipvsadm\'s 33- and 28-character cuts', () => {
  // "SCTP 255.255.255.255:65535" is 26 characters, "255.255.255.255:65535" 21: with -n the cuts never bite.
  const vs = virtualServer({ protocol: 'SCTP', address: '255.255.255.255', port: 65535, scheduler: 'rr', dests: [realServer({ ip: '255.255.255.255', port: 65535 })] });
  const lines = formatIpvsadmList({ services: [vs] }).split('\n');
  assert.equal(lines[3], 'SCTP 255.255.255.255:65535 rr');
  assert.equal(lines[4], '  -> 255.255.255.255:65535        Masq    1      0          0         ');
});

test('sorting subtracts addresses as u32 into an int: 192.x sorts before 10.x', () => {
  const names = ['10.96.0.1', '192.168.0.2', '10.0.0.5', '100.64.0.1'];
  const services = names.map((address) => virtualServer({ protocol: 'TCP', address, port: 80, scheduler: 'rr' }));
  // 192.168.0.2 - 10.96.0.1 = 0xb6480001 > 2^31: negative as an int, so 192.x "is less".
  assert.ok(compareServices(services[1]!, services[0]!) < 0);
  assert.ok(compareServices(services[3]!, services[0]!) > 0, '100.64 - 10.96 < 2^31: the right way round');
  const sorted = sortLikeGlibc(services, compareServices).map((vs) => vs.address);
  // glibc's merge sort on this input: [10.96.0.1, 192.168.0.2] → 192 first (wrapped);
  // [10.0.0.5, 100.64.0.1] stays; merge: 192.168.0.2 vs 10.0.0.5 → 192 (wrapped);
  // 10.96.0.1 vs 10.0.0.5 → 10.0.0.5; 10.96.0.1 vs 100.64.0.1 → 10.96.0.1; then 100.64.0.1.
  assert.deepEqual(sorted, ['192.168.0.2', '10.0.0.5', '10.96.0.1', '100.64.0.1']);
});

test('services sort by family, then protocol number, then address, then port', () => {
  const services = [
    virtualServer({ protocol: 'UDP', address: '10.0.0.1', port: 53, scheduler: 'rr' }),
    virtualServer({ protocol: 'TCP', address: 'fd00::1', port: 80, scheduler: 'rr' }),
    virtualServer({ protocol: 'SCTP', address: '10.0.0.1', port: 1, scheduler: 'rr' }),
    virtualServer({ protocol: 'TCP', address: '10.0.0.1', port: 9153, scheduler: 'rr' }),
    virtualServer({ protocol: 'TCP', address: '10.0.0.1', port: 53, scheduler: 'rr' }),
  ];
  const order = sortLikeGlibc(services, compareServices).map((vs) => `${vs.protocol} ${vs.address}:${vs.port}`);
  assert.deepEqual(order, ['TCP 10.0.0.1:53', 'TCP 10.0.0.1:9153', 'UDP 10.0.0.1:53', 'SCTP 10.0.0.1:1', 'TCP fd00::1:80']);
});

test('--nosort: services in hash-bucket order, newest first in a shared bucket', () => {
  // Two services whose (proto ^ addr ^ port ^ port>>8) & 255 agree: 10.0.0.2:80 and 10.0.0.3:81 (2^80 = 3^81).
  const a = virtualServer({ protocol: 'TCP', address: '10.0.0.2', port: 80, scheduler: 'rr' });
  const b = virtualServer({ protocol: 'TCP', address: '10.0.0.3', port: 81, scheduler: 'rr' });
  const c = virtualServer({ protocol: 'TCP', address: '10.0.0.1', port: 80, scheduler: 'rr' });
  const order = kernelServiceOrder([a, b, c], 0).map((vs) => `${vs.address}:${vs.port}`);
  // Buckets with salt 0: a,b → 6^2^80 = 6^3^81 = 0x54 (84); c → 6^1^80 = 0x57 (87).
  assert.deepEqual(order, ['10.0.0.3:81', '10.0.0.2:80', '10.0.0.1:80']);
});

test('sortServices and sortDests give glibc\'s merge sort\'s order, near addresses (engine sort) and far ones (the merge sort repeated)', () => {
  // Addresses within 2^31 of each other compare truly, and the engine's stable sort is taken;
  // 10.x beside 192.x (or IPv6 words far apart) take the step-by-step merge sort: either way the order is glibc's.
  const pools: { what: string; v4: string[]; v6: string[] }[] = [
    { what: 'near (one /8)', v4: ['10.96.0.1', '10.96.3.7', '10.0.0.5', '10.255.1.1', '10.96.0.2'], v6: ['fd00::1', 'fd00::a', 'fd00:1::1'] },
    { what: 'far (10.x and 192.x)', v4: ['10.96.0.1', '192.168.0.2', '10.0.0.5', '100.64.0.1', '203.0.113.9'], v6: ['fd00::1', '2001:db8::1', 'fe80::1', '::1'] },
  ];
  for (const { what, v4, v6 } of pools) {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = seededRng(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
      const protocols = ['TCP', 'UDP', 'SCTP'] as const;
      const services = Array.from({ length: 30 }, () => {
        const address = pick(rng() < 0.3 ? v6 : v4);
        return virtualServer({ protocol: pick(protocols), address, port: pick([53, 80, 443, 9153]), scheduler: 'rr' });
      });
      const expected = sortLikeGlibc(services, compareServices).map((vs) => `${vs.protocol} ${vs.address}:${vs.port}`);
      assert.deepEqual(sortServices(services).map((vs) => `${vs.protocol} ${vs.address}:${vs.port}`), expected, `${what}, seed ${seed}: services`);
      const dests = Array.from({ length: 25 }, () => realServer({ ip: pick(v4), port: pick([8080, 8443, 53]) }));
      const expectedDests = sortLikeGlibc(dests, compareDests).map((d) => `${d.ip}:${d.port}`);
      assert.deepEqual(sortDests(dests).map((d) => `${d.ip}:${d.port}`), expectedDests, `${what}, seed ${seed}: dests`);
    }
  }
});

test('a fresh Masq dest and any other dest print the same columns as ipvsadm', () => {
  const dests = [
    realServer({ ip: '10.0.0.1', port: 80 }),
    { ...realServer({ ip: '10.0.0.2', port: 80 }), weight: 0 },
    { ...realServer({ ip: '10.0.0.3', port: 80 }), activeConns: 12, inactConns: 3 },
    { ...realServer({ ip: '10.0.0.4', port: 80 }), forward: 'Tunnel' as const },
  ];
  const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.1', port: 80, scheduler: 'rr', dests });
  const lines = formatIpvsadmList({ services: [vs] }).split('\n').slice(4, 8);
  // print_service_entry: "  -> %-28s %-7s %-6d %-10u %-10u".
  const line = (name: string, forward: string, weight: number, active: number, inact: number): string =>
    `  -> ${name.padEnd(28)} ${forward.padEnd(7)} ${String(weight).padEnd(6)} ${String(active).padEnd(10)} ${String(inact).padEnd(10)}`;
  assert.deepEqual(lines, [line('10.0.0.1:80', 'Masq', 1, 0, 0), line('10.0.0.2:80', 'Masq', 0, 0, 0), line('10.0.0.3:80', 'Masq', 1, 12, 3), line('10.0.0.4:80', 'Tunnel', 1, 0, 0)]);
  assert.equal(lines[0], '  -> 10.0.0.1:80                  Masq    1      0          0         ');
});

test('address words read digit by digit agree with the full parser, every IPv6 form', () => {
  const addresses = ['10.96.0.1', '0.0.0.0', '255.255.255.255', '::', '::1', '1::', 'fd00::a', 'fd00:1::12dc', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1',
    'fe80::1', 'FD00::A', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '::ffff:10.0.0.1', '64:ff9b::192.0.2.33'];
  for (const ip of addresses) assert.deepEqual(addressWords(ip), Array.from(ipToWords(ip)), ip);
});
