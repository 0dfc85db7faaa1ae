/**
 * A mode's text for output (renderOutput: bytes where the mode writes them, ModeDriver.renderBytes;
 * what `kpsim compile` writes) is its text as a string (render), byte for byte, as UTF-8: for
 * every node of a generated cluster and of every
 * example cluster under rules/, in every format, through a ClusterView whose nodes are rendered
 * in turn, some as bytes and some as strings (a later node copies what an earlier one kept, kept
 * as bytes or as a string), in both interleavings, against the node compiled alone.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import type { Cluster } from '../../src/model/types.js';
import { compileNode } from '../../src/node/compile-node.js';
import { renderOutput } from '../../src/node/mode-driver.js';
import { RULES_MODES, modeDriver } from '../../src/node/modes.js';
import { loadRulesClusters } from '../helpers/cluster-builders.js';
import { firstDifference } from '../helpers/first-difference.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

/** The modes that write bytes without a string (the others are output as strings). */
const BYTES_MODES = RULES_MODES.filter((mode) => modeDriver(mode).renderBytes !== undefined);

function checkEveryNode(name: string, cluster: Cluster): void {
  const nodes = cluster.nodes.length > 0 ? cluster.nodes.map((n) => n.name) : [undefined];
  for (const mode of BYTES_MODES) {
    const driver = modeDriver(mode);
    for (const format of driver.formats) {
      // Interleaving 0: even nodes as bytes, odd ones as strings; interleaving 1 the other way round.
      for (const interleaving of [0, 1]) {
        const view = new ClusterView(cluster);
        nodes.forEach((nodeName, i) => {
          const node = nodeName === undefined ? view.resolveDefault() : view.resolve(nodeName);
          const shared = view.compile(mode, node);
          const want = driver.render(compileNode(cluster, mode, nodeName !== undefined ? { node: nodeName } : {}), format);
          const asBytes = i % 2 === interleaving;
          const out = asBytes ? renderOutput(driver, shared, format) : driver.render(shared, format);
          const got = typeof out === 'string' ? out : Buffer.from(out).toString('utf8');
          if (got !== want) {
            assert.fail(`${name}: node ${node.name}: ${mode} ${format} ${asBytes ? 'as bytes' : 'as a string'} (nodes before it the other way) differs from the node alone:\n${firstDifference(got, want, ['shared', 'alone'])}`);
          }
        });
      }
    }
  }
}

test('every mode writes bytes (renderBytes)', () => {
  assert.deepEqual(BYTES_MODES, [...RULES_MODES], `modes with renderBytes: ${BYTES_MODES.join(', ')}`);
});

test('each mode writes its default format as bytes, and the formats it makes only as strings as strings', () => {
  const cluster = generatedCluster({ nodes: 2, pods: 40, services: 10, seed: 3 });
  const stringOnly: Record<string, readonly string[]> = { iptables: ['canonical'], ipvs: ['ipsets', 'iptables'], nftables: ['canonical'] };
  for (const mode of RULES_MODES) {
    const driver = modeDriver(mode);
    for (const format of driver.formats) {
      const out = renderOutput(driver, compileNode(cluster, mode, {}), format);
      const want = (stringOnly[mode] ?? []).includes(format) ? 'string' : 'bytes';
      assert.equal(typeof out === 'string' ? 'string' : 'bytes', want, `${mode} ${format}: output as ${typeof out}`);
    }
  }
});

test('renderOutput gives the bytes of a mode that writes them, else its string', () => {
  const cluster = generatedCluster({ nodes: 2, pods: 40, services: 10, seed: 3 });
  for (const mode of RULES_MODES) {
    const driver = modeDriver(mode);
    const out = renderOutput(driver, compileNode(cluster, mode, {}), driver.formats[0]!);
    const want = driver.render(compileNode(cluster, mode, {}), driver.formats[0]!);
    if (driver.renderBytes !== undefined) {
      assert.ok(out instanceof Uint8Array, `${mode}: output is ${typeof out}, want bytes`);
      assert.equal(Buffer.from(out).toString('utf8'), want, `${mode}: bytes differ from the string`);
    } else {
      assert.equal(out, want, `${mode}: output differs from the string`);
    }
  }
});

test('every node of a generated cluster as bytes equals its text as a string', () => {
  checkEveryNode('generated 12 nodes', generatedCluster({ nodes: 12, pods: 600, services: 150, seed: 12 }));
});

test('every node of every example cluster as bytes equals its text as a string', async () => {
  for (const rules of await loadRulesClusters()) checkEveryNode(`rules/${rules.name}`, rules.cluster);
});
