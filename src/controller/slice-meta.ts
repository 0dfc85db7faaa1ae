/**
 * What the EndpointSlice controller writes around the endpoints: the labels (the Service's own,
 * plus the reserved ones it sets) and the generateName prefix (the Service's name and "-", to
 * which the API server adds five random characters: util/generated-names.ts).
 */
import { SERVICE_NAME_LABEL } from '../model/endpoint-slice.js';
import type { Service } from '../model/types.js';

/** endpointslice.kubernetes.io/managed-by: who maintains a slice. */
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** The EndpointSlice controller's name, the value of its managed-by label. */
export const CONTROLLER_NAME = 'endpointslice-controller.k8s.io';
/** Set (empty) on the slices of a Service without a ClusterIP. */
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

const RESERVED_LABELS = new Set([SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL]);

/**
 * setEndpointSliceLabels: the Service's labels except the reserved ones, then the service-name
 * and managed-by labels, and the headless label when the Service has no ClusterIP.
 */
export function endpointSliceLabels(service: Service): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.labels)) if (!RESERVED_LABELS.has(key)) labels[key] = value;
  if (service.clusterIPs.length === 0) labels[HEADLESS_LABEL] = '';
  labels[SERVICE_NAME_LABEL] = service.name;
  labels[MANAGED_BY_LABEL] = CONTROLLER_NAME;
  return labels;
}
