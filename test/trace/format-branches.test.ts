/**
 * The trace for people, by outcome (formatTraceBranches): over every example cluster in rules/,
 * in every mode, one packet per kind of service (ClusterIP, NodePort, load balancer with and
 * outside its source ranges, session affinity, no endpoints, internal and external traffic
 * policy Local, a pod reaching itself through its Service, the node itself), the text must
 * carry everything the JSON says (every endpoint with its probability and masquerading, every
 * outcome, the verdict), print the hops every path shares once, give one branch per endpoint,
 * and print later hooks every branch took alike once. Then hand-made results for what the
 * clusters do not show (goto, nested forks, a branch rejected after its DNAT, notes).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoPackets } from '../../src/cli/demo.js';
import { compile, tracePacket } from '../../src/index.js';
import { proxierStatesFor } from '../../src/node/compile-node.js';
import { RULES_MODES } from '../../src/node/modes.js';
import { formatHop, formatProbability } from '../../src/trace/format.js';
import { formatTraceBranches } from '../../src/trace/format-branches.js';
import { ANSI_STYLE, stripStyle } from '../../src/trace/text-style.js';
import type { Hop, Packet, TraceResult, TraceSample } from '../../src/trace/types.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { loadRulesClusters } from '../helpers/cluster-builders.js';

const clusters = await loadRulesClusters();

/** Beyond demoPackets: eTP Local through a NodePort from outside, a pod that is one of its Service's endpoints, the node itself. */
function morePackets(state: ProxierState): { title: string; packet: Packet }[] {
  const out: { title: string; packet: Packet }[] = [];
  const external = state.family === 4 ? '203.0.113.9' : '2001:db8:ffff::9';
  const proto = (p: string): Packet['proto'] => p.toLowerCase() as Packet['proto'];
  const local = state.servicePorts.find((sp) => sp.info.externalPolicyLocal && sp.info.nodePort !== 0);
  if (local && state.nodeIPs[0]) {
    out.push({ title: `an outside client reaches ${local.info.spn} (externalTrafficPolicy Local) on its NodePort`, packet: { proto: proto(local.info.protocol), src: external, dst: state.nodeIPs[0], dport: local.info.nodePort } });
  }
  const hairpin = state.servicePorts.find((sp) => sp.categorized.allReachableEndpoints.length > 1 && !sp.info.internalPolicyLocal);
  if (hairpin) {
    out.push({ title: `a pod of ${hairpin.info.spn} reaches its own Service (hairpin)`, packet: { proto: proto(hairpin.info.protocol), src: hairpin.categorized.allReachableEndpoints[0]!.ip, dst: hairpin.info.clusterIP, dport: hairpin.info.port } });
  }
  const spread = state.servicePorts.find((sp) => sp.categorized.allReachableEndpoints.length > 1);
  if (spread && state.nodeIPs[0]) {
    out.push({ title: `the node itself connects to ${spread.info.spn} (nat OUTPUT)`, packet: { proto: proto(spread.info.protocol), src: state.nodeIPs[0], dst: spread.info.clusterIP, dport: spread.info.port } });
  }
  return out;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** How often `line` is a whole line of `text`, whatever its indentation. */
function linesEqual(text: string, line: string): number {
  return text.split('\n').filter((l) => l.trimStart() === line.trimStart()).length;
}

/** Everything formatTraceBranches must show of `r`, checked against its text. */
function checkText(r: TraceResult, text: string, what: string): void {
  const evidence = `${what}\n--- text:\n${text}\n--- json verdict ${r.verdict}, endpoints ${JSON.stringify(r.probabilities)}, outcomes ${JSON.stringify(r.outcomes)}`;
  assert.match(text, new RegExp(`^verdict: ${r.verdict}$`, 'm'), evidence);
  assert.match(text, new RegExp(`^masquerade: ${r.masquerade ? 'yes' : 'no'}$`, 'm'), evidence);
  for (const e of r.endpoints) {
    const row = new RegExp(`^ {2}DNAT +${escape(e)} +${escape(formatProbability(r.probabilities[e]!))} +${r.masqueradeByEndpoint[e] ? 'yes' : 'no'}\\b`, 'm');
    assert.match(text, row, `${evidence}\nno row for ${e}`);
  }
  for (const [verdict, p] of Object.entries(r.outcomes ?? {})) {
    assert.match(text, new RegExp(`\\b${verdict} ${escape(formatProbability(p!))}\\b`), `${evidence}\noutcome ${verdict}`);
    if (verdict !== 'DNAT') assert.match(text, new RegExp(`^ {2}${verdict} +- +${escape(formatProbability(p!))}\\b`, 'm'), `${evidence}\noutcome row ${verdict}`);
  }
  if (r.endpoints.length === 0 && !r.outcomes) assert.match(text, new RegExp(`^ {2}${r.verdict} +- +1\\b`, 'm'), evidence);

  // Nothing lost, nothing invented: each rule the walk matched is printed, and no more often
  // than the JSON lists it.
  const counts = new Map<string, number>();
  for (const hop of r.hops) {
    if (hop.table === '') continue;
    const line = formatHop(hop, false).trimStart();
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  for (const [line, inJson] of counts) {
    const inText = linesEqual(text, line);
    assert.ok(inText >= 1, `${evidence}\nmissing hop: ${line}`);
    assert.ok(inText <= inJson, `${evidence}\nhop printed ${inText} times, in the JSON ${inJson}: ${line}`);
  }

  // The hops before the first fork (every path walks them) come first, once each.
  const firstFork = r.hops.findIndex((h) => (h.probability ?? 1) < 1);
  const prefix = r.hops.slice(0, firstFork < 0 ? r.hops.length : firstFork).filter((h) => h.table !== '');
  const textLines = text.split('\n');
  // After the first line (the packet, where it enters), when there is one.
  const start = prefix.length > 0 && textLines[0] !== formatHop(prefix[0]!, false) ? 1 : 0;
  prefix.forEach((hop, n) => {
    const line = formatHop(hop, false);
    assert.equal(textLines[start + n], line, `${evidence}\nshared hop ${n} is not line ${start + n}`);
    // The same rule may be matched again further on (KUBE-MARK-MASQ), but not at this place.
    if (firstFork >= 0) assert.equal(textLines.filter((l) => l === line).length, 1, `${evidence}\nshared hop printed more than once: ${line}`);
  });

  // One branch per endpoint when each endpoint is one path (kube-proxy's rules, a fresh client).
  const headers = textLines.filter((l) => /^branch \d+ of \d+/.test(l));
  if (r.endpoints.length > 1 && !r.outcomes) {
    assert.equal(headers.length, r.endpoints.length, `${evidence}\none branch per endpoint`);
    for (const e of r.endpoints) {
      const header = headers.filter((h) => h.includes(`DNAT to ${e}`));
      assert.equal(header.length, 1, `${evidence}\none branch for ${e}`);
      assert.ok(header[0]!.includes(`p=${formatProbability(r.probabilities[e]!)}`), `${evidence}\n${e}'s branch states its probability`);
    }
  }
  if (r.endpoints.length <= 1 && !r.outcomes) assert.equal(headers.length, 0, `${evidence}\none path, no branches`);

  if (r.sample) assert.match(text, new RegExp(`^sample: ${r.sample.verdict}${r.sample.endpoint ? ` ${escape(r.sample.endpoint)}` : ''}`, 'm'), evidence);
}

/**
 * Identical later hooks are printed once: each endpoint's concrete walk, drawn with seeds (the
 * tracer's own sampled walks, not the branches the renderer reads back), gives what the hooks
 * after its DNAT did; when every endpoint's is the same, the text holds it once under "then, on
 * every branch:", else each different one once and "then as branch N" for the repeats.
 */
function checkTails(r: TraceResult, text: string, sampleWith: (seed: number) => TraceSample, what: string): void {
  if (r.endpoints.length < 2 || r.outcomes) return;
  const tails = new Map<string, string[]>();
  for (let seed = 1; seed <= 200 && tails.size < r.endpoints.length; seed++) {
    const s = sampleWith(seed);
    if (s.endpoint === undefined || tails.has(s.endpoint)) continue;
    let dnat = -1;
    s.hops.forEach((h, i) => { if (h.target === 'DNAT' || h.target.startsWith('dnat ')) dnat = i; });
    const from = s.hops.findIndex((h, i) => i > dnat && (h.depth ?? 0) === 0);
    tails.set(s.endpoint, from < 0 ? [] : s.hops.slice(from).map((h) => formatHop(h, false)));
  }
  assert.equal(tails.size, r.endpoints.length, `${what}: 200 seeds reach every endpoint`);
  const lines = text.split('\n');
  const distinct = [...new Set([...tails.values()].map((t) => t.join('\n')))];
  const evidence = `${what}\n--- text:\n${text}\n--- tails by endpoint:\n${[...tails].map(([e, t]) => `${e}:\n${t.join('\n')}`).join('\n')}`;
  if (distinct.length === 1 && distinct[0] !== '') {
    assert.equal(lines.filter((l) => l === 'then, on every branch:').length, 1, evidence);
    for (const line of tails.values().next().value!) assert.equal(lines.filter((l) => l === line).length, 1, `${evidence}\nprinted more than once: ${line}`);
  } else {
    assert.ok(!lines.includes('then, on every branch:'), evidence);
    if (!distinct.includes('')) {
      assert.equal(lines.filter((l) => /^ {2}then as branch \d+$/.test(l)).length, r.endpoints.length - distinct.length, `${evidence}\nrepeated tails are referred to`);
    }
  }
}

let traced = 0;
let branched = 0;
for (const rc of clusters) {
  const { states } = proxierStatesFor(rc.cluster);
  const packets = states.flatMap((s) => [...demoPackets(s), ...morePackets(s)]);
  for (const mode of RULES_MODES) {
    test(`${rc.name}: ${mode}: every endpoint, probability, outcome and verdict of the JSON is in the text, shared hops once`, () => {
      const compiled = compile(rc.cluster, mode);
      assert.ok(packets.length > 0, `${rc.name} has no service to trace`);
      for (const { title, packet } of packets) {
        const r = JSON.parse(JSON.stringify(tracePacket(compiled, packet, { seed: 3 }))) as TraceResult;
        const plain = formatTraceBranches(r, { packet }).join('\n');
        const what = `${rc.name} ${mode}: ${title}: ${packet.proto} ${packet.src} -> ${packet.dst}:${packet.dport}`;
        checkText(r, plain, what);
        const coloured = formatTraceBranches(r, { packet, style: ANSI_STYLE }).join('\n');
        assert.equal(stripStyle(coloured), plain, `${what}: colours change nothing but colour`);
        if (mode !== 'ipvs') checkTails(r, plain, (seed) => tracePacket(compiled, packet, { seed }).sample!, what);
        traced++;
        if (/^branch 1 of/m.test(plain)) branched++;
      }
    });
  }
}

test('the clusters gave traces with branches to check', () => {
  // Runs after the cluster tests (node:test runs top-level tests in order).
  assert.ok(traced > 100, `${traced} traces`);
  assert.ok(branched > 30, `${branched} traces with branches`);
});

// ------------------------------------------------------------------ the shapes, case by case

const example = clusters.find((c) => c.name === 'example')!;
const POD = '10.244.1.20';

interface ShapeCase {
  name: string;
  mode: 'iptables' | 'ipvs' | 'nftables';
  packet: Packet;
  /** Lines (trimmed) the text must hold exactly once. */
  once: RegExp[];
  /** Lines the text must hold, in this order. */
  inOrder: RegExp[];
  /** Lines the text must not hold. */
  absent?: RegExp[];
}

const shapes: ShapeCase[] = [
  {
    name: 'iptables ClusterIP: the shared prefix, three branches with their SEP chain and DNAT, filter and POSTROUTING once',
    mode: 'iptables',
    packet: { proto: 'tcp', src: POD, dst: '10.96.100.20', dport: 80 },
    once: [/^nat PREROUTING: /, /^ {2}nat KUBE-SERVICES: /, /^filter FORWARD: .*"kubernetes forwarding rules"/, /^ {2}nat KUBE-POSTROUTING: .* -j RETURN$/, /^then, on every branch:$/],
    inOrder: [
      /^tcp 10\.244\.1\.20 -> 10\.96\.100\.20:80, arriving at the node \(nat PREROUTING\)$/,
      /^branch 1 of 3, p=0\.3333333335: DNAT to 10\.244\.0\.5:8080$/, /^ +nat KUBE-SVC-\S+: .*--probability 0\.3333333333 -j KUBE-SEP-/, /^ +nat KUBE-SEP-\S+: .*--to-destination 10\.244\.0\.5:8080$/,
      /^branch 2 of 3, p=0\.3333333333: DNAT to 10\.244\.1\.6:8080$/, /^ +nat KUBE-SEP-\S+: .*--to-destination 10\.244\.1\.6:8080$/,
      /^branch 3 of 3, p=0\.3333333333: DNAT to 10\.244\.1\.7:8080$/,
      /^then, on every branch:$/, /^filter FORWARD: /, /^nat POSTROUTING: /,
      /^verdict: DNAT$/, /^masquerade: no$/, /^ {2}outcome +endpoint +probability +masquerade +branch$/, /^ {2}DNAT +10\.244\.0\.5:8080 +0\.3333333335 +no +1$/,
    ],
  },
  {
    name: 'iptables hairpin: the masqueraded branch has its own POSTROUTING; the two others share theirs',
    mode: 'iptables',
    packet: { proto: 'tcp', src: '10.244.0.5', dst: '10.96.100.20', dport: 80 },
    once: [/^ +nat KUBE-POSTROUTING: .* -j MASQUERADE$/, /^ +nat KUBE-POSTROUTING: .* -j RETURN$/, /^ {2}then as branch 2$/],
    inOrder: [
      /^branch 1 of 3, p=0\.3333333335: DNAT to 10\.244\.0\.5:8080, masqueraded$/, /KUBE-MARK-MASQ/, /-j MASQUERADE$/,
      /^branch 2 of 3, .*: DNAT to 10\.244\.1\.6:8080$/, /-j RETURN$/,
      /^branch 3 of 3, .*: DNAT to 10\.244\.1\.7:8080$/, /^ {2}then as branch 2$/,
      /^masquerade: yes$/, /^ {2}DNAT +10\.244\.0\.5:8080 +0\.3333333335 +yes +1$/, /^ {2}DNAT +10\.244\.1\.6:8080 +0\.3333333333 +no +2$/,
    ],
    absent: [/^then, on every branch:$/],
  },
  {
    name: 'IPVS: the virtual server once, one real server per branch, the rest once',
    mode: 'ipvs',
    packet: { proto: 'tcp', src: POD, dst: '10.96.100.20', dport: 80 },
    once: [/^ipvs LOCAL_IN: -A -t 10\.96\.100\.20:80 -s rr$/, /^filter OUTPUT: /, /^then, on every branch:$/],
    inOrder: [/^branch 1 of 3, p=0\.3333333333: DNAT to 10\.244\.0\.5:8080$/, /^ +ipvs TCP {2}10\.96\.100\.20:80 rr: -> 10\.244\.0\.5:8080 Masq 1$/, /^branch 3 of 3/, /^then, on every branch:$/, /^verdict: DNAT$/, /^sample: DNAT \S+ \(branch [123]\)$/],
  },
  {
    name: 'nftables NodePort: the numgen pick per branch, masquerading once for all',
    mode: 'nftables',
    packet: { proto: 'tcp', src: '203.0.113.9', dst: '192.168.0.2', dport: 30080 },
    once: [/^ip kube-proxy nat-prerouting: jump services$/, /^ +ip kube-proxy masquerading: masquerade/, /^then, on every branch:$/],
    inOrder: [/^branch 1 of 3, p=0\.3333333335: DNAT to 10\.244\.0\.5:8080, masqueraded$/, /numgen random mod 3/, /dnat to 10\.244\.0\.5:8080$/, /^branch 2 of 3/, /^then, on every branch:$/, /^masquerade: yes$/],
  },
  {
    name: 'iptables REJECT without endpoints: one path, no branch, the REJECT row',
    mode: 'iptables',
    packet: { proto: 'tcp', src: POD, dst: '10.96.40.50', dport: 80 },
    once: [/^ +filter KUBE-SERVICES: .*has no endpoints.* -j REJECT$/],
    inOrder: [/^verdict: REJECT$/, /^ {2}outcome +endpoint +probability +masquerade$/, /^ {2}REJECT +- +1 +-$/],
    absent: [/^branch /],
  },
  {
    name: 'an IPv6 destination is written [address]:port',
    mode: 'iptables',
    packet: { proto: 'tcp', src: 'fd00:10:244::4d', dst: 'fd00:10:96::70', dport: 80 },
    once: [/^tcp fd00:10:244::4d -> \[fd00:10:96::70\]:80, arriving at the node \(nat PREROUTING\)$/],
    inOrder: [/^ {2}DNAT +\[fd00:10:244::14\]:8080 +1 +no$/],
  },
];

for (const c of shapes) {
  test(`shape: ${c.name}`, () => {
    const r = tracePacket(compile(example.cluster, c.mode), c.packet, c.mode === 'ipvs' ? {} : {});
    const text = formatTraceBranches(r, { packet: c.packet }).join('\n');
    const lines = text.split('\n');
    for (const re of c.once) assert.equal(lines.filter((l) => re.test(l)).length, 1, `once: ${re}\n${text}`);
    let at = 0;
    for (const re of c.inOrder) {
      const found = lines.findIndex((l, i) => i >= at && re.test(l));
      assert.ok(found >= 0, `in order: ${re} after line ${at}\n${text}`);
      at = found + 1;
    }
    for (const re of c.absent ?? []) assert.ok(!lines.some((l) => re.test(l)), `absent: ${re}\n${text}`);
  });
}

// ------------------------------------------------------------------ hand-made walks

const rule = (table: string, chain: string, text: string, target: string, depth: number, probability: number, extra: Partial<Hop> = {}): Hop => ({ table, chain, rule: text, target, depth, probability, ...extra });
const base = { masquerade: false, origin: 'PREROUTING' as const };

interface MadeCase {
  name: string;
  result: TraceResult;
  /** The branch headers, in order. */
  headers: string[];
  /** Lines the text must hold exactly once. */
  once: string[];
}

const made: MadeCase[] = [
  {
    name: 'a goto into the picked chain stays at its depth; the later hooks differ (one branch is rejected after its DNAT)',
    result: {
      // A rejected path reaches no endpoint: the JSON lists only the other.
      ...base, verdict: 'DNAT', endpoints: ['10.1.0.1:80'],
      probabilities: { '10.1.0.1:80': 0.5 }, masqueradeByEndpoint: { '10.1.0.1:80': false },
      outcomes: { DNAT: 0.5, REJECT: 0.5 },
      hops: [
        rule('nat', 'PREROUTING', '-A PREROUTING -j SVC', 'SVC', 0, 1),
        rule('nat', 'SVC', '-A SVC -m statistic --mode random --probability 0.5 -g EP1', 'EP1', 1, 0.5),
        rule('nat', 'EP1', '-A EP1 -j DNAT --to-destination 10.1.0.1:80', 'DNAT', 1, 0.5),
        rule('filter', 'FORWARD', '-A FORWARD -j ACCEPT', 'ACCEPT', 0, 0.5),
        rule('nat', 'SVC', '-A SVC -g EP2', 'EP2', 1, 0.5),
        rule('nat', 'EP2', '-A EP2 -j DNAT --to-destination 10.1.0.2:80', 'DNAT', 1, 0.5),
        rule('filter', 'FORWARD', '-A FORWARD -d 10.1.0.2 -j REJECT', 'REJECT', 0, 0.5),
      ],
    },
    headers: ['branch 1 of 2, p=0.5: DNAT to 10.1.0.1:80', 'branch 2 of 2, p=0.5: REJECT'],
    once: ['nat PREROUTING: -A PREROUTING -j SVC', '    nat EP2: -A EP2 -j DNAT --to-destination 10.1.0.2:80', '  filter FORWARD: -A FORWARD -j ACCEPT', '  filter FORWARD: -A FORWARD -d 10.1.0.2 -j REJECT'],
  },
  {
    name: 'nested forks: the third path resumes at the first fork, the second at the inner one',
    result: {
      ...base, verdict: 'DNAT', endpoints: ['10.2.0.1:80', '10.2.0.2:80', '10.2.0.3:80'],
      probabilities: { '10.2.0.1:80': 0.25, '10.2.0.2:80': 0.25, '10.2.0.3:80': 0.5 },
      masqueradeByEndpoint: { '10.2.0.1:80': false, '10.2.0.2:80': false, '10.2.0.3:80': false },
      hops: [
        rule('nat', 'PREROUTING', '-A PREROUTING -j OUTER', 'OUTER', 0, 1),
        rule('nat', 'OUTER', '-A OUTER -m statistic --mode random --probability 0.5 -j INNER', 'INNER', 1, 0.5),
        rule('nat', 'INNER', '-A INNER -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.2.0.1:80', 'DNAT', 2, 0.25),
        rule('nat', 'POSTROUTING', '-A POSTROUTING -j RETURN', 'RETURN', 0, 0.25),
        rule('nat', 'INNER', '-A INNER -j DNAT --to-destination 10.2.0.2:80', 'DNAT', 2, 0.25),
        rule('nat', 'POSTROUTING', '-A POSTROUTING -j RETURN', 'RETURN', 0, 0.25),
        rule('nat', 'OUTER', '-A OUTER -j DNAT --to-destination 10.2.0.3:80', 'DNAT', 1, 0.5),
        rule('nat', 'POSTROUTING', '-A POSTROUTING -j RETURN', 'RETURN', 0, 0.5),
        { table: '', chain: '', rule: '', target: '', notes: ['more than 3 branches: the rest were not walked'] },
      ],
    },
    headers: ['branch 1 of 3, p=0.25: DNAT to 10.2.0.1:80', 'branch 2 of 3, p=0.25: DNAT to 10.2.0.2:80', 'branch 3 of 3, p=0.5: DNAT to 10.2.0.3:80'],
    once: ['nat PREROUTING: -A PREROUTING -j OUTER', 'then, on every branch:', 'nat POSTROUTING: -A POSTROUTING -j RETURN', 'note: more than 3 branches: the rest were not walked'],
  },
];

for (const c of made) {
  test(`hand-made: ${c.name}`, () => {
    const text = formatTraceBranches(c.result).join('\n');
    const lines = text.split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('branch ')), c.headers, text);
    for (const line of c.once) assert.equal(lines.filter((l) => l === line).length, 1, `once: ${JSON.stringify(line)}\n${text}`);
    checkText(c.result, text, c.name);
  });
}
