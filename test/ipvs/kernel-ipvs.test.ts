/**
 * IPVS mode over time (pkg/proxy/ipvs/proxier.go): each sync changes the kernel by the
 * difference (virtual and real servers added, edited, deleted; ipset entries; kube-ipvs0
 * addresses), and after any history of changes the kernel holds exactly what one sync from
 * the current objects would build. A sync with nothing changed changes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIpvs } from '../../src/ipvs/compile.js';
import { orderedEntries } from '../../src/ipvs/ipsets.js';
import { formatIpvsadmList } from '../../src/ipvs/ipvsadm-format.js';
import { IpvsKernel, renderIpvsPayload } from '../../src/ipvs/kernel-ipvs.js';
import { seededRng } from '../../src/util/random.js';
import { TEST_NODE_NAME, ep, fixtureConfig, fixtureNode, makeService, makeSlice, tcpPort } from '../helpers/cluster-builders.js';
import { ProxierDriver } from '../helpers/proxier-driver.js';

function kernelView(kernel: IpvsKernel): { table: string; sets: Record<string, string[]>; bound: string[] } {
  return {
    table: formatIpvsadmList(kernel.table()),
    sets: Object.fromEntries(kernel.ipsets().map((s) => [s.name, orderedEntries(s)])),
    bound: kernel.boundAddresses().sort(),
  };
}

test('after random histories the kernel holds what one sync from the current objects builds', () => {
  for (const seed of [21, 22, 23]) {
    const rng = seededRng(seed);
    const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
    const kernel = new IpvsKernel();
    const log: string[] = [];
    for (let step = 0; step < 120; step++) {
      log.push(driver.randomChange(rng, TEST_NODE_NAME));
      if (rng() > 0.35 && step !== 119) continue;
      const compiled = compileIpvs(driver.update().state);
      kernel.apply(kernel.diff(compiled));
      const want = {
        table: formatIpvsadmList(compiled.table),
        sets: Object.fromEntries([...compiled.ipsets.values()].map((s) => [s.name, orderedEntries(s)])),
        bound: [...compiled.boundAddresses].sort(),
      };
      assert.deepEqual(kernelView(kernel), want, `seed ${seed} step ${step}; events:\n${log.join('\n')}`);
      const again = kernel.diff(compiled);
      assert.deepEqual(again.operations.map((op) => op.kind), [], `seed ${seed} step ${step}: a second sync of the same state changes nothing`);
      log.push('-- sync');
    }
  }
});

test('a one-endpoint change is one real server deleted, in ipvsadm-restore form', () => {
  const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
  driver.putService(makeService('ns1', 'web', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; }));
  const slice = (...ips: string[]) => makeSlice('ns1', 'web', 1, (s) => { s.ports = [{ name: 'p80', port: 8080, protocol: 'TCP' }]; s.endpoints = ips.map((ip) => ep(ip)); });
  driver.putSlice(slice('10.0.1.1', '10.0.1.2'));
  const kernel = new IpvsKernel();
  const first = kernel.diff(compileIpvs(driver.update().state));
  kernel.apply(first);
  assert.deepEqual(first.operations.filter((op) => op.kind.endsWith('-service') || op.kind.endsWith('-dest')).map((op) => op.kind), ['add-service', 'add-dest', 'add-dest']);
  driver.putSlice(slice('10.0.1.1'));
  const second = kernel.diff(compileIpvs(driver.update().state));
  const text = renderIpvsPayload(second);
  assert.deepEqual(second.operations.map((op) => op.kind), ['del-dest'], text);
  assert.match(text, /^-d -t 172\.30\.0\.41:80 -r 10\.0\.1\.2:8080$/m);
  assert.match(text, /^# iptables-restore --noflush\n\*nat\n/m);
});
