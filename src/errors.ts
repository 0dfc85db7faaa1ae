/**
 * kpsim's one error class and its code table.
 *
 * A KpsimError is always about the user's input or usage: a manifest, a flag, a ruleset text, a
 * request to the API. A broken invariant inside kpsim is a bug and is reported with a plain Error.
 * Every code below is listed in the README's error table (a test keeps the two in step), and
 * callers branch on `code`, never on the message text.
 */

/** Code → one-line meaning, grouped by area. */
export const codes = {
  // usage: command line and library arguments
  KPSIM_ERR_USAGE_BAD_FLAG: 'a command-line flag or argument has a bad value',
  KPSIM_ERR_USAGE_MISSING_FLAG: 'a required flag or argument is missing',

  // manifest: reading and decoding files
  KPSIM_ERR_MANIFEST_READ: 'a file or folder could not be read',
  KPSIM_ERR_MANIFEST_SYNTAX: 'a file is not valid YAML or JSON',
  KPSIM_ERR_MANIFEST_SHAPE: 'a document is not a Kubernetes object',
  KPSIM_ERR_MANIFEST_TOO_LARGE: 'a file is larger than kpsim reads',

  // model: validating objects
  KPSIM_ERR_MODEL_MISSING_FIELD: 'a required field is missing',
  KPSIM_ERR_MODEL_BAD_FIELD: 'a field has a value of the wrong type or outside its allowed values',
  KPSIM_ERR_MODEL_BAD_PORT: 'a value is not a port (1-65535)',
  KPSIM_ERR_MODEL_BAD_IP: 'a value is not an IP address',
  KPSIM_ERR_MODEL_BAD_CIDR: 'a value is not a CIDR',
  KPSIM_ERR_MODEL_FAMILY_MISMATCH: 'an address is not of the family its context requires',
  KPSIM_ERR_MODEL_DUPLICATE: 'two objects claim the same name, address or port',
  KPSIM_ERR_MODEL_UNKNOWN_REFERENCE: 'an object refers to another that does not exist',
  KPSIM_ERR_MODEL_ALLOCATION: 'an address or port could not be allocated',
  KPSIM_ERR_MODEL_INVALID: 'the input has problems (the message lists each one)',

  // config: KubeProxyConfiguration and node selection
  KPSIM_ERR_CONFIG_BAD_FIELD: 'a KubeProxyConfiguration field has a bad value',
  KPSIM_ERR_CONFIG_UNKNOWN_NODE: 'the node named with --node is not in the cluster',

  // iptables: parsing iptables-save text
  KPSIM_ERR_IPTABLES_PARSE: 'iptables-save text could not be parsed',

  // nftables: parsing `nft list ruleset` text
  KPSIM_ERR_NFTABLES_PARSE: '`nft list ruleset` text could not be parsed',

  // trace: packets and flows
  KPSIM_ERR_TRACE_BAD_PACKET: 'a packet or flow to trace is not valid',

  // ipvs: schedulers and virtual services
  KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER: 'the scheduler name is not one the kernel has',
  KPSIM_ERR_IPVS_BAD_DEST: 'a real server address or weight is not valid',
  KPSIM_ERR_IPVS_DUPLICATE_DEST: 'the real server is already in the virtual service',
  KPSIM_ERR_IPVS_UNKNOWN_DEST: 'the real server is not in the virtual service',

  // proxy: userspace proxy and backend pods
  KPSIM_ERR_PROXY_LISTEN: 'a proxy listener or backend could not be started',
  KPSIM_ERR_PROXY_NO_TARGET: 'the service or node port to send load to does not exist',

  // lab: the kernel lab (network namespaces, the kernel's own rules)
  KPSIM_ERR_LAB_UNAVAILABLE: 'the kernel lab cannot run here (not root, a tool or a kernel feature is missing)',
  KPSIM_ERR_LAB_COMMAND: 'a command the kernel lab ran failed (ip, iptables-restore, nft, conntrack)',
  KPSIM_ERR_LAB_NOT_FOUND: 'no kernel lab with that id is up',

  // api: the HTTP API
  KPSIM_ERR_API_BAD_REQUEST: 'a request to the API is not valid',
  KPSIM_ERR_API_STORAGE: "the API server's --data-dir could not be read or written",

  // source: live clusters read through a kubeconfig or --server
  KPSIM_ERR_SOURCE_KUBECONFIG: 'the kubeconfig could not be read, or names no usable cluster or context',
  KPSIM_ERR_SOURCE_UNREACHABLE: "the cluster's API server could not be reached",
  KPSIM_ERR_SOURCE_TLS: "the API server's certificate could not be verified",
  KPSIM_ERR_SOURCE_AUTH: 'the API server refused the credentials (401 Unauthorized or 403 Forbidden)',
  KPSIM_ERR_SOURCE_RESPONSE: 'the API server answered with an error or a body kpsim cannot read',

  // agent: kpsim agent's syncs
  KPSIM_ERR_AGENT_SYNC: 'a sync of kpsim agent failed (the kernel refused its payload)',

  // output: files kpsim writes
  KPSIM_ERR_OUTPUT_WRITE: 'an output file or folder could not be written',
  // Never thrown as a KpsimError: the code of the API's 500 answer, a bug in kpsim.
  KPSIM_ERR_INTERNAL: 'a bug in kpsim (HTTP 500; please report it)',
} as const;

export type ErrorCode = keyof typeof codes;

/** Where in the user's input a problem is: file, object ("Service default/web"), field path. */
export interface Where {
  file?: string;
  object?: string;
  path?: string;
}

export class KpsimError extends Error {
  override name = 'KpsimError';
  readonly code: ErrorCode;
  readonly where: Where;
  /** The separate problems, when this error stands for several (KPSIM_ERR_MODEL_INVALID). */
  readonly problems: readonly KpsimError[];
  /** The message without its location: what the API puts beside the field in a Status cause. */
  readonly detail: string;

  constructor(code: ErrorCode, detail: string, where: Where = {}, options?: ErrorOptions & { problems?: readonly KpsimError[] }) {
    super(formatLocated(where, detail), options);
    this.code = code;
    this.where = where;
    this.problems = options?.problems ?? [];
    this.detail = detail;
  }

  get file(): string | undefined { return this.where.file; }
  get object(): string | undefined { return this.where.object; }
  get path(): string | undefined { return this.where.path; }

  /** The shape the API answers with and `--json` prints. */
  toJSON(): { code: ErrorCode; message: string; file?: string; object?: string; path?: string; problems?: unknown[] } {
    return {
      code: this.code,
      message: this.message,
      ...this.where,
      ...(this.problems.length > 0 ? { problems: this.problems.map((p) => p.toJSON()) } : {}),
    };
  }
}

/** `file: object: path: detail`, leaving out the parts that are not known. */
export function formatLocated(where: Where, detail: string): string {
  return [where.file, where.object, where.path, detail].filter((part) => part !== undefined && part !== '').join(': ');
}

/** One error that stands for several problems found together; each is listed in the message. */
export function aggregateErrors(problems: readonly KpsimError[]): KpsimError {
  if (problems.length === 1) return problems[0]!;
  const lines = problems.map((p) => `  ${p.message}`).join('\n');
  return new KpsimError('KPSIM_ERR_MODEL_INVALID', `${problems.length} problems:\n${lines}`, {}, { problems });
}

export function isKpsimError(e: unknown): e is KpsimError {
  return e instanceof KpsimError;
}
