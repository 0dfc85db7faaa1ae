/**
 * networking.k8s.io/v1 ServiceCIDR: the ranges ClusterIPs are allocated from. kube-proxy's
 * nftables mode watches them (OnServiceCIDRsChanged) and drops traffic to addresses in them
 * that no Service holds; the other modes do not use them.
 */
import { child, type FieldReader, type JsonObject } from './fields.js';
import { readMetadata } from './metadata.js';

/** The CIDRs of one ServiceCIDR (spec.cidrs, normalised). */
export function decodeServiceCIDR(doc: JsonObject, r: FieldReader): string[] | undefined {
  const meta = readMetadata(doc, r, 'ServiceCIDR', false);
  if (!meta) return undefined;
  const spec = r.object_(doc, 'spec', '') ?? {};
  return r.list(spec, 'cidrs', 'spec').map((c, i) => r.cidr(c, child('spec.cidrs', i))).filter((c): c is string => c !== undefined);
}
