/**
 * Reading untyped manifest data into typed values, one field at a time, while collecting every
 * problem with its file, object and field path. Nothing here throws on bad input: callers look at
 * `problems` once the whole object (and file) has been read, so the user sees all of them at once.
 */
import { KpsimError, type ErrorCode } from '../errors.js';
import { normalizeIP, parseCIDR } from '../util/ip.js';
import type { SharedValues } from './shared-values.js';
import type { Warning } from './types.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Appends ".key" or "[i]" to a field path. */
export function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** Collects the problems and warnings of one object as it is read. */
export class FieldReader {
  readonly problems: KpsimError[] = [];
  readonly warnings: Warning[] = [];
  /** Values the objects of one load share (shared-values.ts); undefined: nothing shared. */
  shared: SharedValues | undefined;

  constructor(
    readonly file: string,
    public object: string,
    /** Fill in what the API server always defaults (protocol TCP): --allocate. */
    readonly apiDefaults = false,
  ) {}

  fail(code: ErrorCode, path: string, detail: string): undefined {
    this.problems.push(new KpsimError(code, detail, { file: this.file, object: this.object, path }));
    return undefined;
  }

  warn(path: string, message: string): void {
    this.warnings.push({ file: this.file, object: this.object, ...(path === '' ? {} : { path }), message });
  }

  /** A nested object, or undefined when absent (absent is not a problem here). */
  object_(parent: JsonObject, key: string, path: string): JsonObject | undefined {
    const value = parent[key];
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) return this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${describe(value)} is not an object`);
    return value;
  }

  list(parent: JsonObject, key: string, path: string): Json[] {
    const value = parent[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${describe(value)} is not a list`);
      return [];
    }
    return value;
  }

  string(parent: JsonObject, key: string, path: string, required = false): string | undefined {
    const value = parent[key];
    if (value === undefined || value === null || value === '') {
      if (required) this.fail('KPSIM_ERR_MODEL_MISSING_FIELD', child(path, key), 'is required');
      return undefined;
    }
    if (typeof value !== 'string') return this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${describe(value)} is not a string`);
    return value;
  }

  /** A string that must be one of `allowed`; `fallback` when absent. */
  oneOf<T extends string>(parent: JsonObject, key: string, path: string, allowed: readonly T[], fallback: T): T {
    const value = this.string(parent, key, path);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${describe(value)} is not one of ${allowed.join(', ')}`);
      return fallback;
    }
    return value as T;
  }

  boolean(parent: JsonObject, key: string, path: string): boolean | undefined {
    const value = parent[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') return this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${describe(value)} is not true or false`);
    return value;
  }

  integer(parent: JsonObject, key: string, path: string, min: number, max: number): number | undefined {
    const value = parent[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      return this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${describe(value)} is not a whole number`);
    }
    if (value < min || value > max) return this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, key), `${value} is not between ${min} and ${max}`);
    return value;
  }

  /** A port number 1-65535; `allowZero` for fields where 0 means "not set" (nodePort). */
  port(parent: JsonObject, key: string, path: string, allowZero = false): number | undefined {
    const value = parent[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value > 65535 || value < (allowZero ? 0 : 1)) {
      return this.fail('KPSIM_ERR_MODEL_BAD_PORT', child(path, key), `${describe(value)} is not a port`);
    }
    return value;
  }

  /** A normalised IP address; a problem when it is not one. */
  ip(value: Json | undefined, path: string): string | undefined {
    if (typeof value !== 'string') return this.fail('KPSIM_ERR_MODEL_BAD_IP', path, `${describe(value)} is not an IP address`);
    const ip = normalizeIP(value);
    if (ip === undefined) return this.fail('KPSIM_ERR_MODEL_BAD_IP', path, `${describe(value)} is not an IP address`);
    // The text as read when it is already normal (nearly always): the normalised copy of an IPv6
    // address is pieced together from slices of a longer text, which it would keep alive (150k pod IPs).
    return ip === value ? value : ip;
  }

  /** A normalised CIDR "network/prefix" (leading/trailing spaces allowed, as the API allows them). */
  cidr(value: Json | undefined, path: string): string | undefined {
    if (typeof value !== 'string') return this.fail('KPSIM_ERR_MODEL_BAD_CIDR', path, `${describe(value)} is not a CIDR`);
    const cidr = parseCIDR(value);
    if (cidr === undefined) return this.fail('KPSIM_ERR_MODEL_BAD_CIDR', path, `${describe(value)} is not a CIDR`);
    return cidr.text;
  }

  /** A string→string map (labels). */
  stringMap(parent: JsonObject, key: string, path: string): Record<string, string> {
    const value = this.object_(parent, key, path);
    const out: Record<string, string> = {};
    if (!value) return out;
    // Keys, not entries: no pair array per label of every object.
    for (const k of Object.keys(value)) {
      const v = value[k]!;
      if (typeof v === 'string') out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else this.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(child(path, key), k), `${describe(v)} is not a string`);
    }
    return out;
  }
}

/** RFC 1123 label or subdomain, as Kubernetes names are. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isDNSSubdomain(name: string): boolean {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDNSLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

/**
 * The generateName prefix controllers use for their objects: "name-", or the bare name when
 * "name-" plus generated characters would not be a valid name (getPodsPrefix,
 * getEndpointSlicePrefix: NameIsDNSSubdomain with the trailing dash masked).
 */
export function generateNamePrefix(name: string): string {
  const prefix = `${name}-`;
  return isDNSSubdomain(`${prefix}a`) ? prefix : name;
}
