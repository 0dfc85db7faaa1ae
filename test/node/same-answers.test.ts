/**
 * The CLI, the API and the library answer alike, by construction (they all go through the mode
 * drivers of src/node/modes.ts): every example cluster in rules/, in every mode, in every output
 * format of that mode, gives the same bytes from `kpsim compile` (its text function, and the real
 * process for the bundled example), from `GET /v1/rules` and from the library's
 * `renderRules(compile(...))`; and the same trace JSON from `kpsim trace --json`, `POST /v1/trace`
 * and `tracePacket`, for one packet per kind of service the cluster has.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { buildApiServer } from '../../src/api/server.js';
import { compileText } from '../../src/cli/compile.js';
import { demoPackets } from '../../src/cli/demo.js';
import { runTrace } from '../../src/cli/trace.js';
import { compile, renderRules, tracePacket } from '../../src/index.js';
import type { OutputFormat } from '../../src/node/mode-driver.js';
import { RULES_MODES, modeDriver } from '../../src/node/modes.js';
import { proxierStatesFor } from '../../src/node/compile-node.js';
import { loadRulesClusters, rulesFolderOptions } from '../helpers/cluster-builders.js';
import type { ClusterOptions } from '../../src/cli/common.js';
import { runCli } from '../helpers/run-cli.js';

const FORMAT_FLAG: Readonly<Record<OutputFormat, string | undefined>> = {
  'kube-proxy': undefined, canonical: '--canonical', stats: '--stats', rate: '--rate', ipsets: '--ipsets', iptables: '--iptables',
};

const clusters = await loadRulesClusters();
const quiet = { quiet: true };

/** The CLI flags of a rules folder's kpsim.flags (e.g. --allocate), as the command line has them. */
function folderFlags(dir: string): ClusterOptions {
  const o = rulesFolderOptions(dir);
  return {
    ...(o.allocate ? { allocate: true } : {}),
    ...(o.nodes !== undefined ? { nodes: String(o.nodes) } : {}),
    ...(o.clusterCIDR !== undefined ? { clusterCidr: [o.clusterCIDR].flat().join(',') } : {}),
    ...(o.serviceClusterIPRange !== undefined ? { serviceClusterIpRange: [o.serviceClusterIPRange].flat().join(',') } : {}),
  };
}

for (const rc of clusters) {
  const app = buildApiServer({ cluster: rc.cluster });
  after(() => app.close());

  for (const mode of RULES_MODES) {
    for (const format of modeDriver(mode).formats) {
      test(`${rc.name}: ${mode} ${format}: the CLI, the API and the library print the same bytes`, async () => {
        const flag = FORMAT_FLAG[format];
        const cli = await compileText({ file: [rc.dir], ...folderFlags(rc.dir), mode, ...quiet, ...(flag ? { [flag.slice(2)]: true } : {}) });
        const res = await app.inject({ method: 'GET', url: `/v1/rules?mode=${mode}&format=${format}` });
        assert.equal(res.statusCode, 200, res.body);
        const library = renderRules(compile(rc.cluster, mode), format);
        assert.equal(res.body, cli, `GET /v1/rules?mode=${mode}&format=${format} differs from kpsim compile --mode ${mode} ${flag ?? ''}`);
        assert.equal(library, cli, `renderRules(compile(cluster, '${mode}'), '${format}') differs from kpsim compile`);
      });
    }

    test(`${rc.name}: ${mode}: kpsim trace --json, POST /v1/trace and tracePacket give the same JSON`, async () => {
      const { states } = proxierStatesFor(rc.cluster);
      const packets = states.flatMap((s) => demoPackets(s).map((d) => d.packet));
      assert.ok(packets.length > 0, `${rc.name} has no service to trace`);
      const compiled = compile(rc.cluster, mode);
      for (const packet of packets) {
        let cli = '';
        await runTrace({ file: [rc.dir], ...folderFlags(rc.dir), mode, ...quiet, json: true, proto: packet.proto, src: packet.src, dst: packet.dst, dport: String(packet.dport), seed: '3' }, (text) => { cli += text; });
        const res = await app.inject({ method: 'POST', url: '/v1/trace', payload: { ...packet, mode, seed: 3 } });
        assert.equal(res.statusCode, 200, res.body);
        const library = tracePacket(compiled, packet, { seed: 3 });
        const what = `${packet.proto} ${packet.src} -> ${packet.dst}:${packet.dport}`;
        assert.deepEqual(JSON.parse(res.body), JSON.parse(cli), `${what}: the API differs from the CLI`);
        assert.deepEqual(JSON.parse(JSON.stringify(library)), JSON.parse(cli), `${what}: the library differs from the CLI`);
      }
    });
  }
}

test('the real kpsim process prints what compileText gives, in every mode (rules/example)', async () => {
  for (const mode of RULES_MODES) {
    const expected = await compileText({ file: ['rules/example'], mode, ...quiet });
    const run = runCli(['compile', '-f', 'rules/example', '--mode', mode, '-q']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, expected, `kpsim compile --mode ${mode}`);
  }
});

test('with no mode asked for, the CLI and the API both take the configuration\'s (rules/ipvs-mode says ipvs)', async () => {
  const rc = clusters.find((c) => c.name === 'ipvs-mode');
  assert.ok(rc, 'rules/ipvs-mode exists');
  assert.equal(rc.cluster.config.mode, 'ipvs');
  const app = buildApiServer({ cluster: rc.cluster });
  after(() => app.close());
  const cli = await compileText({ file: [rc.dir], ...quiet });
  const res = await app.inject({ method: 'GET', url: '/v1/rules' });
  assert.equal(res.body, cli);
  assert.equal(cli, renderRules(compile(rc.cluster, 'ipvs')), 'the configured mode is IPVS: ipvsadm text');
});
