/**
 * The differential check: every example cluster's node (loaded as its goldens are, with its
 * kpsim.flags), its rules loaded into a real kernel in a lab (namespaces for the node, a client
 * and the pods), in iptables mode and in nftables mode, and for every service port the flows of
 * src/lab/flows.ts sent through it: from outside, from a pod, from the node, from the service's
 * own endpoint (hairpin), to node ports, external and load-balancer IPs, from inside and outside
 * source ranges, TCP and UDP. Each flow is judged against kpsim's trace of the same rules:
 *
 *   - every endpoint the kernel's DNAT chose is one the trace predicts;
 *   - every endpoint it predicts is chosen: the tries per flow make a miss less likely than 1e-6
 *     per endpoint (n (1 - p_min)^tries <= 1e-6), and at least 5 are expected per endpoint;
 *   - the kernel's choices follow the predicted probabilities: Pearson's chi-square, alpha = 1e-6
 *     per flow (about 380 flows a mode, 760 a run: a false alarm about once in 1 300 runs);
 *   - masquerade, REJECT and DROP as predicted (conntrack, the client's errors, the trace); a try
 *     that connected while the kernel kept no record of it is left out, at most 1% of a flow's
 *     (at least one, at most three), and counted in the diagnostics;
 *   - the rules each traced try matched (nft's trace, six tries a flow) are, place by place, the
 *     path kpsim's trace takes to the endpoint that try reached.
 *
 * Time: a cluster takes 2 to 25 s here (lab up, tries, lab down), large-cluster about 40 s; a
 * mode about 3 minutes on a busy two-core machine (184 s iptables, 174 s nftables at load
 * average 16). large-cluster is sampled to 5 of its 52 service ports (every kind first, then
 * evenly; about 100 pods): every endpoint would be a thousand namespaces, and the kernel's
 * neighbour table, shared by every namespace on the machine, holds 1024 entries.
 *
 * Needs root, ip, iptables, nft, conntrack and perl; skipped with the reason otherwise. The lab's
 * namespaces are named kpsim-test-<pid>-<n>-... and removed after each cluster, whatever happens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNode } from '../../src/lab/differential.js';
import { type LabMode, labUnavailable } from '../../src/lab/kernel-modes.js';
import { labDownNamed } from '../../src/lab/lab.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import { loadRulesClusters } from '../helpers/cluster-builders.js';

const MODES: readonly LabMode[] = ['iptables', 'nftables'];
const PREFIX = `kpsim-test-${process.pid}`;
/**
 * A cluster of at most this many service ports a family is checked whole (every example but
 * large-cluster); a larger one is sampled to SAMPLED_SERVICE_PORTS (every kind first): its
 * services have about 20 endpoints, 330 tries a flow, and the check must stay a few minutes.
 */
const WHOLE_SERVICE_PORTS = 10;
const SAMPLED_SERVICE_PORTS = 5;

const clusters = await loadRulesClusters();
let labs = 0;

for (const mode of MODES) test(`the kernel agrees with kpsim's trace on every example cluster (${mode} mode)`, { skip: labUnavailable(mode) ?? false, timeout: 10 * 60_000 }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'kpsim-lab-test-'));
  t.after(async () => {
    await labDownNamed(`${PREFIX}-`);
    rmSync(stateDir, { recursive: true, force: true });
  });
  for (const { name, cluster } of clusters) {
    await t.test(name, async () => {
      const node = resolveNode(cluster);
      const states = buildProxierStates(cluster, node);
      const whole = states.every((s) => s.servicePorts.length <= WHOLE_SERVICE_PORTS);
      const report = await checkNode({ node, states }, { mode, maxServicePorts: whole ? WHOLE_SERVICE_PORTS : SAMPLED_SERVICE_PORTS, lab: { stateDir, namePrefix: PREFIX, id: String(++labs) } });
      const failures = report.cases.filter((c) => c.problems.length > 0);
      assert.deepEqual(
        failures.map((c) => `${c.name}:\n  ${c.problems.join('\n  ')}`),
        [],
        `${failures.length} of ${report.cases.length} flows disagree (kernel: ${failures.map((c) => JSON.stringify(c.kernel)).join('; ')})`,
      );
      // A check that sent nothing would pass: each cluster with services has flows, each flow tries.
      const servicePorts = states.reduce((sum, s) => sum + s.servicePorts.length, 0);
      if (servicePorts > 0) assert.ok(report.cases.length > 0 && report.tries >= report.cases.length, `${report.cases.length} flows, ${report.tries} tries for ${servicePorts} service ports`);
      // Tries left out are shown, not hidden: a lost record (connected, the kernel kept nothing) and
      // a try judged from an entry the kernel evicted (its destroy event).
      const excluded = report.cases.reduce((sum, c) => sum + c.excluded, 0);
      const lost = report.cases.reduce((sum, c) => sum + c.lost, 0);
      const evicted = report.cases.reduce((sum, c) => sum + c.evicted, 0);
      t.diagnostic(`${mode} ${name}: ${report.cases.length} flows, ${report.tries} tries (${excluded} left out, ${lost} of them lost records; ${evicted} judged from evicted entries); lab up ${(report.ms.up / 1000).toFixed(1)} s, probe ${(report.ms.probe / 1000).toFixed(1)} s, down ${(report.ms.down / 1000).toFixed(1)} s${report.skipped.length > 0 ? `; ${report.skipped.join('; ')}` : ''}`);
    });
  }
});
