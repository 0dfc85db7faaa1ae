import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { type TargetSpec, parseNodePortFlag, parseTargetFlag, resolveTarget, targetAddress } from '../../src/load/target.js';
import { loadCluster } from '../../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

const cluster = await loadCluster('rules/example');
const states = buildProxierStates(cluster, resolveNode(cluster));

const parseCases: { flag: '--target' | '--nodeport'; value: string; want: TargetSpec | RegExp }[] = [
  { flag: '--target', value: 'svc/web', want: { kind: 'service', text: 'svc/web', name: 'web' } },
  { flag: '--target', value: 'svc/web:http', want: { kind: 'service', text: 'svc/web:http', name: 'web', port: 'http' } },
  { flag: '--target', value: 'svc/kube-system/kube-dns:9153', want: { kind: 'service', text: 'svc/kube-system/kube-dns:9153', namespace: 'kube-system', name: 'kube-dns', port: '9153' } },
  { flag: '--target', value: 'service/web', want: { kind: 'service', text: 'service/web', name: 'web' } },
  { flag: '--target', value: 'web', want: /^--target: "web" is not svc\/NAME\[:port\]/ },
  { flag: '--target', value: 'svc/', want: /^--target: / },
  { flag: '--target', value: 'svc/Web', want: /^--target: / },
  { flag: '--nodeport', value: 'node-a:30080', want: { kind: 'nodePort', text: 'node-a:30080', node: 'node-a', port: 30080 } },
  { flag: '--nodeport', value: '192.168.0.2:30080', want: { kind: 'nodePort', text: '192.168.0.2:30080', node: '192.168.0.2', port: 30080 } },
  { flag: '--nodeport', value: '[2001:db8::2]:30080', want: { kind: 'nodePort', text: '[2001:db8::2]:30080', node: '2001:db8::2', port: 30080 } },
  { flag: '--nodeport', value: 'node-a', want: /^--nodeport: "node-a" is not NODE:PORT/ },
  { flag: '--nodeport', value: 'node-a:70000', want: /^--nodeport: / },
];

for (const c of parseCases) {
  test(`${c.flag} ${c.value}`, (t) => {
    t.plan(1);
    const parse = c.flag === '--target' ? parseTargetFlag : parseNodePortFlag;
    if (c.want instanceof RegExp) {
      const want = c.want;
      t.assert.throws(() => parse(c.value), (e: unknown) => e instanceof KpsimError && e.code === 'KPSIM_ERR_USAGE_BAD_FLAG' && want.test(e.message));
    } else {
      t.assert.deepEqual(parse(c.value), c.want);
    }
  });
}

const resolveCases: { spec: string; want: { spn: string; via: string; address: string } }[] = [
  { spec: 'svc/web', want: { spn: 'default/web:http', via: 'ClusterIP', address: '10.96.100.20:80' } },
  { spec: 'svc/default/web:80', want: { spn: 'default/web:http', via: 'ClusterIP', address: '10.96.100.20:80' } },
  { spec: 'svc/kube-dns', want: { spn: 'kube-system/kube-dns:dns-tcp', via: 'ClusterIP', address: '10.96.0.10:53' } },
  { spec: 'svc/kube-dns:metrics', want: { spn: 'kube-system/kube-dns:metrics', via: 'ClusterIP', address: '10.96.0.10:9153' } },
  { spec: 'svc/dual', want: { spn: 'default/dual:http', via: 'ClusterIP', address: '10.96.60.70:80' } },
  { spec: 'node-a:30080', want: { spn: 'default/web:http', via: 'NodePort', address: '192.168.0.2:30080' } },
  { spec: '192.168.0.2:31443', want: { spn: 'default/shop:https', via: 'NodePort', address: '192.168.0.2:31443' } },
];

for (const c of resolveCases) {
  test(`resolve ${c.spec}`, (t) => {
    t.plan(1);
    const spec = c.spec.startsWith('svc/') ? parseTargetFlag(c.spec) : parseNodePortFlag(c.spec);
    const got = resolveTarget(cluster, states, spec);
    t.assert.deepEqual({ spn: got.servicePort.info.spn, via: got.via, address: targetAddress(got) }, c.want);
  });
}

const missingCases: { spec: string; want: RegExp }[] = [
  { spec: 'svc/nope', want: /service nope does not exist in any namespace; services: default\/api, default\/docs, default\/dual, default\/empty, .*default\/web, kube-system\/kube-dns$/ },
  { spec: 'svc/kube-system/web', want: /service kube-system\/web does not exist; services: / },
  { spec: 'svc/web:https', want: /service default\/web has no TCP port "https"; its TCP ports: http 80$/ },
  { spec: 'svc/docs', want: /service default\/docs is ExternalName/ },
  { spec: 'node-b:30080', want: /node node-b is another node: kpsim runs node node-a's proxy \(choose the node with --node node-b\)/ },
  { spec: '192.168.0.3:30080', want: /node 192.168.0.3 is another node/ },
  { spec: 'node-z:30080', want: /node node-z is not node node-a or one of its addresses \(192.168.0.2, 2001:db8::2\)/ },
  { spec: 'node-a:30081', want: /node port 30081 is not a TCP node port of any IPv4 service; node ports: 31443 \(default\/shop:https\), 30080 \(default\/web:http\)$/ },
  { spec: '[2001:db8::2]:30080', want: /node port 30080 is not a TCP node port of any IPv6 service; node ports: none$/ },
];

for (const c of missingCases) {
  test(`no target: ${c.spec}`, (t) => {
    t.plan(1);
    const spec = c.spec.startsWith('svc/') ? parseTargetFlag(c.spec) : parseNodePortFlag(c.spec);
    t.assert.throws(() => resolveTarget(cluster, states, spec), (e: unknown) => e instanceof KpsimError && e.code === 'KPSIM_ERR_PROXY_NO_TARGET' && c.want.test(e.message));
  });
}
