/**
 * Discovery: what clients ask before anything else (../shared/reference/kube-api.md §1-2).
 *
 * - `/version`: the Debian kubectl is a dispatcher that runs its bundled kubectl of the server's
 *   minor version (1.27-1.33 here), so the minor must be one it has.
 * - `/api`, `/apis`: the aggregated form (APIGroupDiscoveryList, apidiscovery.k8s.io/v2) when the
 *   Accept header asks for it, with the exact Content-Type client-go checks; the legacy
 *   APIVersions / APIGroupList otherwise, with `/api/v1` and `/apis/<g>/<v>` resource lists.
 * - `/openapi/v3`: the minimum that lets `kubectl create`/`apply` validate on the server: a root
 *   and one document per group-version whose PATCH operations list `fieldValidation`.
 *   `/openapi/v2` stays 404, which kubectl tolerates.
 */
import { createHash } from 'node:crypto';
import { RESOURCES, type ResourceType, type Subresource, VERBS, groupVersions } from './resources.js';

export const SERVER_VERSION = { major: '1', minor: '33', gitVersion: 'v1.33.1', gitCommit: '', gitTreeState: 'clean', buildDate: '', goVersion: '', compiler: 'gc', platform: 'linux/amd64', emulationMajor: '1', emulationMinor: '33', minCompatibilityMajor: '1', minCompatibilityMinor: '32' } as const;

export const AGGREGATED_CONTENT_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

/** Whether an Accept header asks for aggregated discovery (v2 or v2beta1). */
export function wantsAggregated(accept: string | undefined): { version: 'v2' | 'v2beta1' } | undefined {
  for (const part of (accept ?? '').split(',')) {
    const params = new Map(part.split(';').slice(1).map((p) => p.trim().split('=') as [string, string]));
    if (params.get('g') === 'apidiscovery.k8s.io' && params.get('as') === 'APIGroupDiscoveryList') {
      const v = params.get('v');
      if (v === 'v2' || v === 'v2beta1') return { version: v };
    }
  }
  return undefined;
}

function resourcesOf(group: string, version: string): ResourceType[] {
  return RESOURCES.filter((r) => r.group === group && r.version === version);
}

/** What a subresource answers: the object itself, or an autoscaling/v1 Scale. */
function subresourceKind(r: ResourceType, subresource: Subresource): { group: string; version: string; kind: string } {
  return subresource === 'scale' ? { group: 'autoscaling', version: 'v1', kind: 'Scale' } : { group: r.group, version: r.version, kind: r.kind };
}

function aggregatedResource(r: ResourceType): Record<string, unknown> {
  return {
    resource: r.resource,
    singularResource: r.singular,
    scope: r.namespaced ? 'Namespaced' : 'Cluster',
    responseKind: { group: r.group, version: r.version, kind: r.kind },
    verbs: [...VERBS],
    ...(r.shortNames.length > 0 ? { shortNames: [...r.shortNames] } : {}),
    ...(r.categories.length > 0 ? { categories: [...r.categories] } : {}),
    ...(r.subresources.length > 0
      ? { subresources: r.subresources.map((s) => ({ subresource: s, responseKind: subresourceKind(r, s), verbs: ['get', 'patch', 'update'] })) }
      : {}),
  };
}

/** The aggregated answer of `/api` (core) or `/apis` (every other group). */
export function aggregatedDiscovery(core: boolean, version: 'v2' | 'v2beta1'): Record<string, unknown> {
  const groups = groupVersions().filter((gv) => (gv.group === '') === core);
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: groups.map((gv) => ({
      metadata: { name: gv.group, creationTimestamp: null },
      versions: [{ version: gv.version, freshness: 'Current', resources: resourcesOf(gv.group, gv.version).map(aggregatedResource) }],
    })),
  };
}

export function legacyCoreVersions(): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] };
}

function apiGroup(group: string): Record<string, unknown> {
  const versions = groupVersions()
    .filter((gv) => gv.group === group)
    .map((gv) => ({ groupVersion: `${gv.group}/${gv.version}`, version: gv.version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

export function legacyGroupList(): Record<string, unknown> {
  const groups = [...new Set(groupVersions().filter((gv) => gv.group !== '').map((gv) => gv.group))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(apiGroup) };
}

/** `/apis/<group>`, or undefined when kpsim does not serve that group. */
export function legacyGroup(group: string): Record<string, unknown> | undefined {
  if (!groupVersions().some((gv) => gv.group === group && group !== '')) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group) };
}

/** `/api/v1` or `/apis/<g>/<v>`: the APIResourceList, subresources as `name/sub` entries. */
export function resourceList(group: string, version: string): Record<string, unknown> | undefined {
  const resources = resourcesOf(group, version);
  if (resources.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? version : `${group}/${version}`,
    resources: resources.flatMap((r) => [
      {
        name: r.resource,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: [...VERBS],
        ...(r.shortNames.length > 0 ? { shortNames: [...r.shortNames] } : {}),
        ...(r.categories.length > 0 ? { categories: [...r.categories] } : {}),
      },
      ...r.subresources.map((s) => {
        const kind = subresourceKind(r, s);
        return { name: `${r.resource}/${s}`, singularName: '', namespaced: r.namespaced, ...(s === 'scale' ? { group: kind.group, version: kind.version } : {}), kind: kind.kind, verbs: ['get', 'patch', 'update'] };
      }),
    ]),
  };
}

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

/** One group-version's OpenAPI v3 document: each kind's item path with its PATCH operation. */
export function openapiDocument(group: string, version: string): Record<string, unknown> | undefined {
  const resources = resourcesOf(group, version);
  if (resources.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  for (const r of resources) {
    const base = `/${gvPath(group, version)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.resource}/{name}`;
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const params = [
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } },
    ];
    const op = (verb: string): Record<string, unknown> => ({
      operationId: `${verb}${r.namespaced ? 'Namespaced' : ''}${r.kind}`,
      'x-kubernetes-action': verb,
      'x-kubernetes-group-version-kind': gvk,
      parameters: params,
      responses: { '200': { description: 'OK' } },
    });
    paths[base] = { get: op('get'), put: op('put'), patch: op('patch'), delete: op('delete') };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion }, paths, components: { schemas: {} } };
}

/** A stable hash of each document, for the root's `serverRelativeURL` (clients cache by it). */
function documentHash(group: string, version: string): string {
  return createHash('sha512').update(JSON.stringify(openapiDocument(group, version))).digest('hex').slice(0, 128).toUpperCase();
}

export function openapiRoot(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const gv of groupVersions()) paths[gvPath(gv.group, gv.version)] = { serverRelativeURL: `/openapi/v3/${gvPath(gv.group, gv.version)}?hash=${documentHash(gv.group, gv.version)}` };
  return { paths };
}

