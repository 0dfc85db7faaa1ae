/**
 * The Kubernetes API's error answers: `Status` objects with code, reason, message and details
 * (apimachinery pkg/api/errors/errors.go; ../shared/reference/kube-api.md §4). A StatusError
 * carries one through the handlers; kpsim's own validation problems become 422 Invalid with one
 * cause per field, in the same words kpsim prints for a file.
 */
import type { KpsimError, ErrorCode } from '../../errors.js';
import { type ResourceType, qualifiedResource } from './resources.js';

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number };
}

export class StatusError extends Error {
  override name = 'StatusError';
  constructor(readonly status: Status) {
    super(status.message);
  }
}

export function isStatusError(e: unknown): e is StatusError {
  return e instanceof StatusError;
}

function failure(code: number, reason: string, message: string, details?: Status['details']): StatusError {
  return new StatusError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) });
}

function detailsOf(type: ResourceType, name: string): NonNullable<Status['details']> {
  return { name, ...(type.group !== '' ? { group: type.group } : {}), kind: type.resource };
}

export function badRequest(message: string): StatusError {
  return failure(400, 'BadRequest', message);
}

export function unauthorized(): StatusError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

export function forbidden(type: ResourceType, name: string, why: string): StatusError {
  return failure(403, 'Forbidden', `${qualifiedResource(type)} "${name}" is forbidden: ${why}`, detailsOf(type, name));
}

export function notFound(type: ResourceType, name: string): StatusError {
  return failure(404, 'NotFound', `${qualifiedResource(type)} "${name}" not found`, detailsOf(type, name));
}

/** An unknown path: what the real server answers for a URL it has no handler for. */
export function pathNotFound(): StatusError {
  return failure(404, 'NotFound', 'the server could not find the requested resource');
}

export function methodNotAllowed(): StatusError {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

export function alreadyExists(type: ResourceType, name: string): StatusError {
  return failure(409, 'AlreadyExists', `${qualifiedResource(type)} "${name}" already exists`, detailsOf(type, name));
}

export function conflict(type: ResourceType, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): StatusError {
  return failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": ${why}`, detailsOf(type, name));
}

/** 410 for a resourceVersion or continue token older than the history kept. */
export function expired(message: string): StatusError {
  return failure(410, 'Expired', message);
}

export function requestEntityTooLarge(limitBytes: number): StatusError {
  return failure(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limitBytes}`);
}

export function unsupportedMediaType(contentType: string, accepted: readonly string[]): StatusError {
  return failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format (${contentType || 'none'}) - accepted media types include: ${accepted.join(', ')}`);
}

export function tooLargeResourceVersion(requested: number, current: number): StatusError {
  return failure(504, 'Timeout', `Too large resource version: ${requested}, current: ${current}`, { retryAfterSeconds: 1 });
}

export function internalError(message: string): StatusError {
  return failure(500, 'InternalError', `Internal error occurred: ${message}`);
}

/** The field error type a kpsim problem corresponds to (apimachinery's field.ErrorType). */
function causeReason(code: ErrorCode): string {
  switch (code) {
    case 'KPSIM_ERR_MODEL_MISSING_FIELD':
      return 'FieldValueRequired';
    case 'KPSIM_ERR_MODEL_DUPLICATE':
      return 'FieldValueDuplicate';
    case 'KPSIM_ERR_MODEL_UNKNOWN_REFERENCE':
      return 'FieldValueNotFound';
    default:
      return 'FieldValueInvalid';
  }
}

/**
 * 422 Invalid for kpsim's validation problems of one object: `Service "web" is invalid: <field>:
 * <detail>` (bracketed and comma-joined when there are several, as the real server writes them),
 * with one cause per problem, so kubectl prints `* spec.ports[0].port: 70000 is not a port`.
 */
export function invalid(type: ResourceType, name: string, problems: readonly KpsimError[]): StatusError {
  const causes: StatusCause[] = problems.map((p) => ({ reason: causeReason(p.code), message: p.detail, ...(p.path !== undefined ? { field: p.path } : {}) }));
  const texts = causes.map((c) => (c.field !== undefined ? `${c.field}: ${c.message}` : c.message));
  const summary = texts.length === 1 ? texts[0]! : `[${texts.join(', ')}]`;
  return failure(422, 'Invalid', `${type.kind} "${name}" is invalid: ${summary}`, {
    name,
    ...(type.group !== '' ? { group: type.group } : {}),
    kind: type.kind,
    causes,
  });
}

/** 422 without field causes: a patch that cannot be applied to the object. */
export function unprocessable(message: string): StatusError {
  return failure(422, 'Invalid', message);
}
