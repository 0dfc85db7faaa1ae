/** Label and field selectors as the API server reads them (apimachinery labels/fields). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENDPOINT_SLICES, SERVICES } from '../../../src/api/kube/resources.js';
import { parseFieldSelector, parseLabelSelector } from '../../../src/api/kube/selectors.js';
import { isStatusError } from '../../../src/api/kube/status.js';

const labels = { app: 'web', tier: 'front', 'service.kubernetes.io/headless': '', version: '3' };

const labelCases: { selector: string; want: boolean }[] = [
  { selector: '', want: true },
  { selector: 'app=web', want: true },
  { selector: 'app==web', want: true },
  { selector: 'app!=web', want: false },
  { selector: 'missing!=x', want: true },
  { selector: 'app in (web, api)', want: true },
  { selector: 'app notin (web)', want: false },
  { selector: 'missing notin (web)', want: true },
  { selector: 'tier', want: true },
  { selector: '!tier', want: false },
  // kube-proxy's own selector: this object is headless, so kube-proxy does not want it.
  { selector: '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name', want: false },
  { selector: 'app=web, tier=front', want: true },
  { selector: 'app=web,tier=back', want: false },
  { selector: 'version>2', want: true },
  { selector: 'version<3', want: false },
  { selector: 'service.kubernetes.io/headless=', want: true },
];
for (const c of labelCases) {
  test(`label selector ${JSON.stringify(c.selector)} → ${c.want}`, () => assert.equal(parseLabelSelector(c.selector).matches(labels), c.want));
}

for (const bad of ['app=-x', 'a b=c', 'app in (x', 'version>x', '=x']) {
  test(`label selector ${JSON.stringify(bad)} is a 400`, () => {
    assert.throws(() => parseLabelSelector(bad), (e: unknown) => isStatusError(e) && e.status.code === 400 && e.status.reason === 'BadRequest', bad);
  });
}

const svc = { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.5', type: 'NodePort' } };
const fieldCases: { selector: string; want: boolean }[] = [
  { selector: 'metadata.name=web', want: true },
  { selector: 'metadata.name==web', want: true },
  { selector: 'metadata.name!=web', want: false },
  { selector: 'metadata.namespace=default,spec.type=NodePort', want: true },
  { selector: 'spec.clusterIP=10.96.0.6', want: false },
];
for (const c of fieldCases) {
  test(`field selector ${JSON.stringify(c.selector)} → ${c.want}`, () => assert.equal(parseFieldSelector(c.selector, SERVICES).matches(svc), c.want));
}

test('a field a kind does not select on is a 400', () => {
  assert.throws(() => parseFieldSelector('spec.type=NodePort', ENDPOINT_SLICES), (e: unknown) => isStatusError(e) && /field label not supported: spec.type/.test(e.message));
});
