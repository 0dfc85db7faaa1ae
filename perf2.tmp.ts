import { generatedState } from './bench/common.js';
import { IptablesRulesWriter } from './src/iptables/incremental-sync.js';
const state = generatedState(10000);
const w = new IptablesRulesWriter();
w.sync({ state, full: true, updatedServices: new Set() });
const c0 = process.cpuUsage();
for (let i = 0; i < 40; i++) {
  const idx = 5000 + i;
  const sp = state.servicePorts[idx]!;
  const sp2 = { ...sp, endpoints: sp.endpoints.slice(1), categorized: { ...sp.categorized, clusterEndpoints: sp.categorized.clusterEndpoints?.slice(1), allReachableEndpoints: sp.categorized.allReachableEndpoints.slice(1) } };
  const ports = [...state.servicePorts]; ports[idx] = sp2;
  w.sync({ state: { ...state, servicePorts: ports }, full: false, updatedServices: new Set([`${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}`]) });
}
const c = process.cpuUsage(c0);
console.log('partial avg cpu ms', ((c.user + c.system) / 1000 / 40).toFixed(2));
