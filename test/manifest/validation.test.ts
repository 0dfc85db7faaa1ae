/**
 * The ugly inputs: every problem is reported with file, object and field path, all problems of
 * an input at once, and nothing is half-loaded (the load throws; no Cluster comes back).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { clusterFromManifests, type LoadOptions } from '../../src/manifest/load.js';
import { aliasBomb } from '../helpers/bad-inputs.js';

const svc = (name: string, spec: string, ns = 'default'): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec}
`;

const slice = (name: string, service: string, body: string): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: default
  labels: {kubernetes.io/service-name: ${service}}
addressType: IPv4
${body}
`;

const workload = (kind: string, name: string, spec: string): string => `apiVersion: apps/v1
kind: ${kind}
metadata: {name: ${name}}
spec:
${spec}
`;

const podManifest = (name: string, labels: string, extra = ''): string => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: ${labels}}
spec:
  nodeName: n1
  containers: [{name: app, image: app, ports: [{name: web, containerPort: 8080}]}]
status:
  podIP: 10.244.0.5
  conditions: [{type: Ready, status: "True"}]
${extra}`;

const nodeManifest = 'apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.2}]}\n';

interface BadCase {
  name: string;
  files: Record<string, string>;
  options?: LoadOptions;
  /** Each expected problem: its code and the exact message. */
  want: { code: KpsimError['code']; message: string }[];
}

const badCases: BadCase[] = [
  {
    name: 'port out of range names file, object and field',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.96.0.5\n  ports: [{port: 70000, protocol: TCP}]') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_PORT', message: 'svc.yaml: Service default/web: spec.ports[0].port: 70000 is not a port' }],
  },
  {
    name: 'malformed YAML gives the line',
    files: { 'bad.yaml': 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n' },
    want: [{ code: 'KPSIM_ERR_MANIFEST_SYNTAX', message: 'bad.yaml: line 4 column 1: not valid YAML: Flow map in block collection must be sufficiently indented and end with a }' }],
  },
  {
    name: 'a YAML alias bomb (billion laughs) names the file',
    files: { 'bomb.yaml': aliasBomb },
    want: [{ code: 'KPSIM_ERR_MANIFEST_SYNTAX', message: 'bomb.yaml: not accepted: its aliases expand to more than 100 copies (a YAML alias bomb?)' }],
  },
  {
    name: 'an alias to an anchor not yet set',
    files: { 'alias.yaml': 'a: *nope\nb: &nope 1\n' },
    want: [{ code: 'KPSIM_ERR_MANIFEST_SYNTAX', message: 'alias.yaml: not valid YAML: Unresolved alias (the anchor must be set before the alias): nope' }],
  },
  {
    name: 'malformed JSON',
    files: { 'bad.json': '{"apiVersion": "v1", "kind": ' },
    want: [{ code: 'KPSIM_ERR_MANIFEST_SYNTAX', message: 'bad.json: not valid JSON: Unexpected end of JSON input' }],
  },
  {
    name: 'missing name',
    files: { 'svc.yaml': 'apiVersion: v1\nkind: Service\nmetadata: {namespace: default}\nspec: {clusterIP: 10.96.0.5}\n' },
    want: [{ code: 'KPSIM_ERR_MODEL_MISSING_FIELD', message: 'svc.yaml: Service: metadata.name: is required' }],
  },
  {
    name: 'missing kind',
    files: { 'x.yaml': 'apiVersion: v1\nmetadata: {name: web}\n' },
    want: [{ code: 'KPSIM_ERR_MANIFEST_SHAPE', message: 'x.yaml: object web: kind: is required' }],
  },
  {
    name: 'a document that is not an object',
    files: { 'x.yaml': '- just\n- a list\n' },
    want: [{ code: 'KPSIM_ERR_MANIFEST_SHAPE', message: 'x.yaml: is not a Kubernetes object (a mapping with apiVersion and kind)' }],
  },
  {
    name: 'bad ClusterIP',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.96.0.300\n  ports: [{port: 80, protocol: TCP}]') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_IP', message: 'svc.yaml: Service default/web: spec.clusterIP: "10.96.0.300" is not an IP address' }],
  },
  {
    name: 'ClusterIP outside the service CIDR',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.200.0.1\n  ports: [{port: 80, protocol: TCP}]') },
    options: { serviceClusterIPRange: '10.96.0.0/12' },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_IP', message: 'svc.yaml: Service default/web: spec.clusterIPs[0]: 10.200.0.1 is outside the service CIDR 10.96.0.0/12 (--service-cluster-ip-range)' }],
  },
  {
    name: 'duplicate ClusterIP names both services',
    files: {
      'a.yaml': svc('a', '  clusterIP: 10.96.0.5\n  ports: [{port: 80, protocol: TCP}]'),
      'b.yaml': svc('b', '  clusterIP: 10.96.0.5\n  ports: [{port: 80, protocol: TCP}]'),
    },
    want: [{ code: 'KPSIM_ERR_MODEL_DUPLICATE', message: 'b.yaml: Service default/b: spec.clusterIPs[0]: ClusterIP 10.96.0.5 is already used by Service default/a (a.yaml)' }],
  },
  {
    name: 'nodePort outside 1-65535',
    files: { 'svc.yaml': svc('web', '  type: NodePort\n  clusterIP: 10.96.0.5\n  ports: [{port: 80, protocol: TCP, nodePort: 70000}]') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_PORT', message: 'svc.yaml: Service default/web: spec.ports[0].nodePort: 70000 is not a port' }],
  },
  {
    name: 'duplicate node port',
    files: {
      'svc.yaml': [
        svc('a', '  type: NodePort\n  clusterIP: 10.96.0.5\n  ports: [{port: 80, protocol: TCP, nodePort: 30080}]'),
        svc('b', '  type: NodePort\n  clusterIP: 10.96.0.6\n  ports: [{port: 80, protocol: TCP, nodePort: 30080}]'),
      ].join('---\n'),
    },
    want: [{ code: 'KPSIM_ERR_MODEL_DUPLICATE', message: 'svc.yaml: Service default/b: spec.ports[0].nodePort: node port 30080/TCP is already used by Service default/a (svc.yaml)' }],
  },
  {
    name: 'endpoint address of the wrong family',
    files: { 'eps.yaml': slice('web-1', 'web', 'endpoints:\n- addresses: ["fd00::1"]\nports: [{name: "", port: 80, protocol: TCP}]') },
    want: [{ code: 'KPSIM_ERR_MODEL_FAMILY_MISMATCH', message: 'eps.yaml: EndpointSlice default/web-1: endpoints[0].addresses[0]: fd00::1 is not an IPv4 address (addressType is IPv4)' }],
  },
  {
    name: 'several problems in several files are all reported',
    files: {
      'a.yaml': svc('a', '  clusterIP: nope\n  ports: [{port: 0, protocol: TCP}]'),
      'b.yaml': svc('b', '  clusterIP: 10.96.0.6\n  ports: [{port: 80, protocol: QUIC}]'),
    },
    want: [
      { code: 'KPSIM_ERR_MODEL_BAD_IP', message: 'a.yaml: Service default/a: spec.clusterIP: "nope" is not an IP address' },
      { code: 'KPSIM_ERR_MODEL_BAD_PORT', message: 'a.yaml: Service default/a: spec.ports[0].port: 0 is not a port' },
      { code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'b.yaml: Service default/b: spec.ports[0].protocol: "QUIC" is not one of TCP, UDP, SCTP' },
    ],
  },
  {
    name: 'bad service type',
    files: { 'svc.yaml': svc('web', '  type: Magic\n  clusterIP: 10.96.0.5') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'svc.yaml: Service default/web: spec.type: "Magic" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName' }],
  },
  {
    name: 'bad source range',
    files: { 'svc.yaml': svc('web', '  type: LoadBalancer\n  clusterIP: 10.96.0.5\n  loadBalancerSourceRanges: ["10.0.0.0/33"]\n  ports: [{port: 80, protocol: TCP, nodePort: 30001}]') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_CIDR', message: 'svc.yaml: Service default/web: spec.loadBalancerSourceRanges[0]: "10.0.0.0/33" is not a CIDR' }],
  },
  {
    name: 'two KubeProxyConfigurations',
    files: {
      'a.yaml': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n',
      'b.yaml': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n',
    },
    want: [{ code: 'KPSIM_ERR_MODEL_DUPLICATE', message: 'more than one KubeProxyConfiguration (a.yaml, b.yaml); give one' }],
  },
  {
    name: 'bad config field',
    files: { 'kp.yaml': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables: {masqueradeBit: 40}\n' },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'kp.yaml: KubeProxyConfiguration: iptables.masqueradeBit: 40 is not between 0 and 31' }],
  },
  {
    name: 'a workload without a selector, as the API server says it',
    files: { 'deploy.yaml': workload('Deployment', 'web', '  replicas: 2\n  template: {metadata: {labels: {app: web}}}') },
    want: [{ code: 'KPSIM_ERR_MODEL_MISSING_FIELD', message: 'deploy.yaml: Deployment default/web: spec.selector: Required value' }],
  },
  {
    name: 'a selector its template does not match, as the API server says it',
    files: { 'deploy.yaml': workload('Deployment', 'web', '  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: check-out, tier: web}}}') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'deploy.yaml: Deployment default/web: spec.template.metadata.labels: Invalid value: {"app":"check-out","tier":"web"}: `selector` does not match template `labels`' }],
  },
  {
    name: 'a template without labels',
    files: { 'ds.yaml': workload('DaemonSet', 'agent', '  selector: {matchExpressions: [{key: app, operator: Exists}]}\n  template: {spec: {containers: []}}') },
    want: [{ code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'ds.yaml: DaemonSet default/agent: spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`' }],
  },
  {
    name: 'an empty selector, in each kind\'s words',
    files: {
      'rs.yaml': workload('ReplicaSet', 'web', '  selector: {}\n  template: {metadata: {labels: {app: web}}}'),
      'sts.yaml': workload('StatefulSet', 'db', '  selector: {matchLabels: {}}\n  template: {metadata: {labels: {app: db}}}'),
    },
    want: [
      { code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'rs.yaml: ReplicaSet default/web: spec.selector: Invalid value: {}: empty selector is invalid for deployment' },
      { code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'sts.yaml: StatefulSet default/db: spec.selector: Invalid value: {}: empty selector is invalid for statefulset' },
    ],
  },
  {
    name: 'a selector requirement the API server refuses',
    files: { 'deploy.yaml': workload('Deployment', 'web', '  selector: {matchExpressions: [{key: app, operator: In}, {key: tier, operator: Near, values: [a]}]}\n  template: {metadata: {labels: {app: web}}}') },
    want: [
      { code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: "deploy.yaml: Deployment default/web: spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'" },
      { code: 'KPSIM_ERR_MODEL_BAD_FIELD', message: 'deploy.yaml: Deployment default/web: spec.selector.matchExpressions[1].operator: Unsupported value: "Near": supported values: "In", "NotIn", "Exists", "DoesNotExist"' },
    ],
  },
  {
    name: 'a pod with a bad address and a container port that is not one',
    files: { 'pod.yaml': 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, ports: [{containerPort: 0}]}]\nstatus: {podIP: 10.244.0.300}\n' },
    want: [
      { code: 'KPSIM_ERR_MODEL_BAD_PORT', message: 'pod.yaml: Pod default/p: spec.containers[0].ports[0].containerPort: 0 is not a port' },
      { code: 'KPSIM_ERR_MODEL_BAD_IP', message: 'pod.yaml: Pod default/p: status.podIP: "10.244.0.300" is not an IP address' },
    ],
  },
  {
    name: 'two workloads of a kind with one name',
    files: { 'a.yaml': workload('Deployment', 'web', '  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: web}}}'), 'b.yaml': workload('Deployment', 'web', '  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: web}}}') },
    want: [{ code: 'KPSIM_ERR_MODEL_DUPLICATE', message: 'b.yaml: Deployment default/web: metadata.name: is defined twice (also in a.yaml)' }],
  },
  {
    name: 'a udpIdleTimeout that is not a duration',
    files: {
      'a.yaml': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nudpIdleTimeout: soon\n',
    },
    want: [{ code: 'KPSIM_ERR_CONFIG_BAD_FIELD', message: 'a.yaml: KubeProxyConfiguration: udpIdleTimeout: "soon" is not a duration such as "900s" or "15m"' }],
  },
  {
    name: 'a udpIdleTimeout of 0',
    files: {
      'a.yaml': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nudpIdleTimeout: 0s\n',
    },
    want: [{ code: 'KPSIM_ERR_CONFIG_BAD_FIELD', message: 'a.yaml: KubeProxyConfiguration: udpIdleTimeout: "0s": must be greater than 0' }],
  },
  {
    name: 'a bad --service-cluster-ip-range is a usage problem',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.96.0.5') },
    options: { serviceClusterIPRange: '10.96.0.0/40' },
    want: [{ code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: '--service-cluster-ip-range: "10.96.0.0/40" is not a CIDR' }],
  },
];

function load(files: Record<string, string>, options: LoadOptions = {}) {
  return clusterFromManifests(Object.entries(files).map(([file, text]) => ({ file, text })), options);
}

function problemsOf(e: unknown): { code: string; message: string }[] {
  assert.ok(e instanceof KpsimError, `expected a KpsimError, got ${String(e)}`);
  const list = e.problems.length > 0 ? e.problems : [e];
  return list.map((p) => ({ code: p.code, message: p.message }));
}

for (const c of badCases) {
  test(`rejects: ${c.name}`, () => {
    let thrown: unknown;
    try {
      load(c.files, c.options);
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown !== undefined, 'the load should have failed');
    assert.deepEqual(problemsOf(thrown), c.want);
  });
}

interface WarnCase {
  name: string;
  files: Record<string, string>;
  options?: LoadOptions;
  want: string[];
}

const warnCases: WarnCase[] = [
  {
    name: 'no nodePort says there will be no NodePort rules',
    files: { 'svc.yaml': svc('web', '  type: NodePort\n  clusterIP: 10.96.0.5\n  ports: [{port: 80, protocol: TCP}]') },
    want: ['svc.yaml|Service default/web|spec.ports[0].nodePort|not set, so no NodePort rules for this port (--allocate assigns one)'],
  },
  {
    name: 'nodePort outside the configured range is only a warning',
    files: { 'svc.yaml': svc('web', '  type: NodePort\n  clusterIP: 10.96.0.5\n  ports: [{port: 80, protocol: TCP, nodePort: 8080}]') },
    want: ['svc.yaml|Service default/web|spec.ports[0].nodePort|8080 is outside the node-port range 30000-32767 (kube-proxy still writes its rules)'],
  },
  {
    name: 'slice for an unknown service',
    files: { 'eps.yaml': slice('ghost-1', 'ghost', 'endpoints:\n- addresses: [10.0.0.1]\nports: [{name: "", port: 80, protocol: TCP}]') },
    want: ['eps.yaml|EndpointSlice default/ghost-1|metadata.labels[kubernetes.io/service-name]|service default/ghost does not exist, so no rule uses these endpoints'],
  },
  {
    name: 'unused kinds are skipped and said once',
    files: {
      'all.yaml': [
        'apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\n',
        'apiVersion: batch/v1\nkind: Job\nmetadata: {name: b}\n',
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n',
      ].join('---\n'),
    },
    want: ['|||skipped 3 objects of kinds kpsim does not use: Job (batch/v1) x2, ConfigMap (v1) x1'],
  },
  {
    name: 'missing protocol without --allocate: the port is ignored',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.96.0.5\n  ports: [{port: 80}]') },
    want: ['svc.yaml|Service default/web|spec.ports[0].protocol|not set, so kube-proxy would not match this port: it is ignored (--allocate defaults it to TCP as the API server does)'],
  },
  {
    name: 'a selector that matches no pod names the service and the selector',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.96.0.5\n  selector: {app: web, tier: front}\n  ports: [{port: 80, protocol: TCP}]'), 'pod.yaml': podManifest('api-1', '{app: api}'), 'node.yaml': nodeManifest },
    want: ['svc.yaml|Service default/web|spec.selector|app=web,tier=front matches no pod in namespace default, so the service has no endpoints'],
  },
  {
    name: 'a named targetPort no pod has names the service, the port and the pods',
    files: { 'svc.yaml': svc('web', '  clusterIP: 10.96.0.5\n  selector: {app: web}\n  ports: [{port: 80, protocol: TCP, targetPort: http}]'), 'pod.yaml': podManifest('web-1', '{app: web}'), 'node.yaml': nodeManifest },
    want: ['svc.yaml|Service default/web|spec.ports[0].targetPort|no pod selected by app=web has a port named "http" (TCP): the pods are listed without this port, so it has no endpoints'],
  },
  {
    name: 'a named targetPort some pods lack',
    files: {
      'svc.yaml': svc('web', '  clusterIP: 10.96.0.5\n  selector: {app: web}\n  ports: [{port: 80, protocol: TCP, targetPort: web}]'),
      'pods.yaml': [podManifest('web-1', '{app: web}'), podManifest('web-2', '{app: web}').replace('name: web, containerPort', 'name: http, containerPort')].join('---\n'),
      'node.yaml': nodeManifest,
    },
    want: ['svc.yaml|Service default/web|spec.ports[0].targetPort|1 of the 2 pods selected by app=web has no port named "web" (TCP) (web-2): listed without this port, so it is not among its endpoints'],
  },
  {
    name: 'pods without an address, pods on nodes the input lacks',
    files: {
      'svc.yaml': svc('web', '  clusterIP: 10.96.0.5\n  selector: {app: web}\n  ports: [{port: 80, protocol: TCP, targetPort: 8080}]'),
      'pods.yaml': [podManifest('web-1', '{app: web}'), podManifest('web-2', '{app: web}').replace('podIP: 10.244.0.5', 'phase: Pending')].join('---\n'),
    },
    want: [
      'svc.yaml|Service default/web|spec.selector|1 of the 2 pods selected by app=web has no status.podIP yet (web-2), so it is not an endpoint (--allocate schedules pods and gives them addresses)',
      'svc.yaml|Service default/web|spec.selector|1 of the 2 pods selected by app=web runs on node not in the cluster (n1), so the controller leaves it out: give the Node objects too',
    ],
  },
  {
    name: 'missing ClusterIP without --allocate',
    files: { 'svc.yaml': svc('web', '  ports: [{port: 80, protocol: TCP}]') },
    want: ['svc.yaml|Service default/web|spec.clusterIP|not set, so kube-proxy writes no rules for this service (--allocate assigns one as the API server would)'],
  },
];

for (const c of warnCases) {
  test(`warns: ${c.name}`, () => {
    const cluster = load(c.files, c.options);
    assert.deepEqual(
      cluster.warnings.map((w) => [w.file ?? '', w.object ?? '', w.path ?? '', w.message].join('|')),
      c.want,
    );
  });
}

test('udpIdleTimeout: kube-proxy\'s 250ms by default, else the config\'s', () => {
  const config = (text: string) => load({ 'kp.yaml': `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${text}` }).config.udpIdleTimeoutSeconds;
  assert.deepEqual([config(''), config('udpIdleTimeout: 2s\n'), config('udpIdleTimeout: 100ms\n')], [0.25, 2, 0.1]);
});

test('a kind: List is read item by item', () => {
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'ns1' }, spec: { clusterIP: '10.96.0.5', ports: [{ port: 80, protocol: 'TCP' }] } },
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } },
    ],
  };
  const cluster = load({ 'list.json': JSON.stringify(list) });
  assert.deepEqual(cluster.services.map((s) => `${s.namespace}/${s.name} ${s.clusterIPs.join(',')}`), ['ns1/web 10.96.0.5']);
  assert.deepEqual(cluster.nodes.map((n) => `${n.name} ${n.addresses.map((a) => a.address).join(',')}`), ['n1 192.168.0.2']);
});

test('legacy Endpoints become slices with ready and not-ready addresses', () => {
  const endpoints = `apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets:
- addresses: [{ip: 10.0.0.1, nodeName: n1}, {ip: "fd00::1"}]
  notReadyAddresses: [{ip: 10.0.0.2}]
  ports: [{name: http, port: 8080, protocol: TCP}]
`;
  const cluster = load({ 'ep.yaml': endpoints });
  const summary = cluster.endpointSlices.map((s) => ({
    name: s.name,
    service: s.serviceName,
    addressType: s.addressType,
    endpoints: s.endpoints.map((e) => `${e.addresses[0]} ready=${String(e.conditions.ready)} node=${e.nodeName ?? '-'}`),
    ports: s.ports.map((p) => `${p.name}/${p.protocol}/${String(p.port)}`),
  }));
  assert.deepEqual(summary, [
    { name: 'web-legacy-0-ipv4', service: 'web', addressType: 'IPv4', endpoints: ['10.0.0.1 ready=true node=n1', '10.0.0.2 ready=false node=-'], ports: ['http/TCP/8080'] },
    { name: 'web-legacy-0-ipv6', service: 'web', addressType: 'IPv6', endpoints: ['fd00::1 ready=true node=-'], ports: ['http/TCP/8080'] },
  ]);
});

test('addresses are normalised as kube-proxy parses them (leading zeros are decimal)', () => {
  const cluster = load({ 'svc.yaml': svc('web', '  clusterIP: 10.096.000.010\n  ports: [{port: 80, protocol: TCP}]') });
  assert.deepEqual(cluster.services[0]!.clusterIPs, ['10.96.0.10']);
});

test('a 10 MB manifest loads', () => {
  const docs: string[] = [];
  let i = 0;
  let size = 0;
  while (size < 10 * 1024 * 1024) {
    const ip = `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    const doc = svc(`svc-${i}`, `  clusterIP: ${ip}\n  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]\n  selector: {app: svc-${i}, tier: backend, padding: "${'x'.repeat(200)}"}`);
    docs.push(doc);
    size += doc.length + 4;
    i++;
  }
  const cluster = load({ 'big.yaml': docs.join('---\n') });
  assert.equal(cluster.services.length, i);
});
