/**
 * kube-proxy's jumps from the built-in chains: the order proxier.go ensures them in, and the
 * order they end up in on a node (each one prepended; kubelet's KUBE-FIREWALL jumps already
 * there), which is what `iptables -S` shows on a kubeadm node running kube-proxy 1.30.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kubeProxyJumps, kubeProxyJumpsInChainOrder, kubeProxyJumpRules } from '../../src/trace/default-jumps.js';

test('ensure order: iptablesJumpChains, then iptablesKubeletJumpChains', () => {
  const order = kubeProxyJumps(4).map((j) => `${j.table} ${j.chain}->${j.target}`);
  assert.deepEqual(order, [
    'filter INPUT->KUBE-EXTERNAL-SERVICES', 'filter FORWARD->KUBE-EXTERNAL-SERVICES', 'filter INPUT->KUBE-NODEPORTS',
    'filter FORWARD->KUBE-SERVICES', 'filter OUTPUT->KUBE-SERVICES', 'filter FORWARD->KUBE-FORWARD',
    'filter INPUT->KUBE-PROXY-FIREWALL', 'filter OUTPUT->KUBE-PROXY-FIREWALL', 'filter FORWARD->KUBE-PROXY-FIREWALL',
    'nat OUTPUT->KUBE-SERVICES', 'nat PREROUTING->KUBE-SERVICES', 'nat POSTROUTING->KUBE-POSTROUTING',
    'filter INPUT->KUBE-FIREWALL', 'filter OUTPUT->KUBE-FIREWALL',
  ]);
});

test('rule text: extra args, then the comment, then the jump', () => {
  const [first] = kubeProxyJumps(4);
  assert.deepEqual(first!.args, ['-m', 'conntrack', '--ctstate', 'NEW', '-m', 'comment', '--comment', 'kubernetes externally-visible service portals', '-j', 'KUBE-EXTERNAL-SERVICES']);
  assert.deepEqual(kubeProxyJumps(4).at(-1)!.args, ['-j', 'KUBE-FIREWALL']);
});

test('chain order on a node', () => {
  const lines = kubeProxyJumpsInChainOrder(4).map((j) => `${j.table} ${j.chain} ${j.target}`);
  assert.deepEqual(lines, [
    'filter INPUT KUBE-PROXY-FIREWALL', 'filter INPUT KUBE-NODEPORTS', 'filter INPUT KUBE-EXTERNAL-SERVICES', 'filter INPUT KUBE-FIREWALL',
    'filter FORWARD KUBE-PROXY-FIREWALL', 'filter FORWARD KUBE-FORWARD', 'filter FORWARD KUBE-SERVICES', 'filter FORWARD KUBE-EXTERNAL-SERVICES',
    'filter OUTPUT KUBE-PROXY-FIREWALL', 'filter OUTPUT KUBE-SERVICES', 'filter OUTPUT KUBE-FIREWALL',
    'nat PREROUTING KUBE-SERVICES', 'nat OUTPUT KUBE-SERVICES', 'nat POSTROUTING KUBE-POSTROUTING',
  ]);
});

test('without kubelet\'s KUBE-FIREWALL jumps', () => {
  assert.ok(!kubeProxyJumps(6, { kubeletFirewall: false }).some((j) => j.target === 'KUBE-FIREWALL'));
  assert.deepEqual(kubeProxyJumpRules(4, 'filter', 'OUTPUT', { kubeletFirewall: false }).map((r) => r.args.at(-1)), ['KUBE-PROXY-FIREWALL', 'KUBE-SERVICES']);
});
