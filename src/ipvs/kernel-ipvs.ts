/**
 * What kube-proxy's IPVS mode changes in the kernel at each sync (syncProxyRules, syncService,
 * syncEndpoint, cleanLegacyService and syncIPSetEntries in pkg/proxy/ipvs/proxier.go): not the
 * table, the difference. A virtual server that is missing is added, one whose scheduler, flags
 * or persistence differ is edited, one no service port claims any more is deleted (only of the
 * proxier's own family); real servers are added and deleted one by one; ipset entries are added
 * and deleted (`ipset restore`); service addresses are bound to and unbound from the dummy
 * interface kube-ipvs0; and the IPVS-mode iptables rules, which do not grow with services, are
 * restored whole every sync.
 *
 * A real server that leaves is deleted through kube-proxy's graceful termination manager: at
 * once for UDP and SCTP or when it holds no connection, otherwise set to weight 0 until its
 * connections end. This kernel carries no traffic, so every such dest holds none and goes at
 * once (kpsim simulate replays the draining over time).
 *
 * Pure: the kernel's table, sets and addresses are plain data here, shared by the proxiers of
 * both families as the kernel's one IPVS table is.
 */
import type { Family } from '../util/ip.js';
import { IptablesKernel } from '../iptables/kernel-tables.js';
import { type RestorePayload, renderRestore, rulesetPayload } from '../iptables/restore.js';
import type { IpvsCompiled } from './compile.js';
import { type IPSet, ipsetCreateLine } from './ipsets.js';
import { ipvsadmDestOptions, ipvsadmServiceName, ipvsadmServiceOptions } from './ipvsadm-format.js';
import { type IpvsTable, type RealServer, type VirtualServer, destAddr, virtualServerKey } from './table.js';

export type IpvsOperation =
  | { readonly kind: 'add-service' | 'edit-service' | 'del-service'; readonly vs: VirtualServer }
  | { readonly kind: 'add-dest' | 'edit-dest' | 'del-dest'; readonly vs: VirtualServer; readonly dest: RealServer }
  | { readonly kind: 'ipset-create'; readonly set: IPSet }
  | { readonly kind: 'ipset-add' | 'ipset-del'; readonly set: string; readonly entry: string }
  | { readonly kind: 'bind' | 'unbind'; readonly address: string; readonly family: Family };

/** One IPVS-mode sync of one family: the kernel operations, then the iptables restore. */
export interface IpvsSyncPayload {
  readonly family: Family;
  readonly operations: readonly IpvsOperation[];
  readonly iptables: RestorePayload;
}

/** The dummy interface kube-proxy binds service addresses to. */
export const DUMMY_DEVICE = 'kube-ipvs0';

export class IpvsKernel {
  /** Virtual servers by kube-proxy's key ("10.96.0.10:53/UDP"), in creation order. */
  readonly #services = new Map<string, VirtualServer>();
  readonly #ipsets = new Map<string, IPSet>();
  readonly #bound = new Map<string, Family>();
  readonly #iptables = new Map<Family, IptablesKernel>();

  /** What one family's sync changes to reach `compiled`. */
  diff(compiled: IpvsCompiled): IpvsSyncPayload {
    const family = compiled.family;
    const operations: IpvsOperation[] = [];
    const wanted = new Set<string>();
    for (const vs of compiled.table.services) {
      const key = virtualServerKey(vs);
      wanted.add(key);
      const current = this.#services.get(key);
      if (current === undefined) operations.push({ kind: 'add-service', vs });
      else if (!sameService(current, vs)) operations.push({ kind: 'edit-service', vs });
      const have = new Map((current?.dests ?? []).map((d) => [destAddr(d), d]));
      const want = new Set<string>();
      // The kernel links each new dest in front: adding in reverse list order rebuilds the compiled order.
      for (let i = vs.dests.length - 1; i >= 0; i--) {
        const dest = vs.dests[i]!;
        const addr = destAddr(dest);
        want.add(addr);
        const had = have.get(addr);
        if (had === undefined) operations.push({ kind: 'add-dest', vs, dest });
        else if (had.weight !== dest.weight || had.forward !== dest.forward) operations.push({ kind: 'edit-dest', vs, dest });
      }
      for (const [addr, dest] of have) if (!want.has(addr)) operations.push({ kind: 'del-dest', vs, dest });
    }
    for (const [key, vs] of this.#services) {
      if (vs.family === family && !wanted.has(key)) operations.push({ kind: 'del-service', vs });
    }
    for (const set of compiled.ipsets.values()) {
      const current = this.#ipsets.get(set.name);
      if (current === undefined) operations.push({ kind: 'ipset-create', set: { ...set, entries: new Set() } });
      for (const entry of set.entries) if (!current?.entries.has(entry)) operations.push({ kind: 'ipset-add', set: set.name, entry });
      for (const entry of current?.entries ?? []) if (!set.entries.has(entry)) operations.push({ kind: 'ipset-del', set: set.name, entry });
    }
    const bind = new Set(compiled.boundAddresses);
    for (const address of compiled.boundAddresses) if (!this.#bound.has(address)) operations.push({ kind: 'bind', address, family });
    for (const [address, of] of this.#bound) if (of === family && !bind.has(address)) operations.push({ kind: 'unbind', address, family });
    return { family, operations, iptables: rulesetPayload(compiled.ruleset) };
  }

  /** Apply a sync's operations and its iptables restore. */
  apply(payload: IpvsSyncPayload): void {
    let iptables = this.#iptables.get(payload.family);
    if (iptables === undefined) this.#iptables.set(payload.family, (iptables = new IptablesKernel(payload.family)));
    // The iptables restore is checked first: when it fails kube-proxy logs and returns, after
    // the IPVS changes were made (they are netlink calls of their own); kpsim applies both or none.
    iptables.restore(payload.iptables);
    for (const op of payload.operations) this.#operate(op);
  }

  #operate(op: IpvsOperation): void {
    switch (op.kind) {
      case 'add-service':
      case 'edit-service': {
        const key = virtualServerKey(op.vs);
        const current = this.#services.get(key);
        const { dests: _dests, ...fields } = op.vs;
        this.#services.set(key, { ...fields, dests: current?.dests ?? [] });
        return;
      }
      case 'del-service':
        this.#services.delete(virtualServerKey(op.vs));
        return;
      case 'add-dest':
      case 'edit-dest':
      case 'del-dest': {
        const vs = this.#services.get(virtualServerKey(op.vs));
        if (vs === undefined) return;
        const addr = destAddr(op.dest);
        const rest = vs.dests.filter((d) => destAddr(d) !== addr);
        if (op.kind === 'del-dest') vs.dests = rest;
        else if (op.kind === 'add-dest') vs.dests = [{ ...op.dest }, ...rest];
        else vs.dests = vs.dests.map((d) => (destAddr(d) === addr ? { ...d, weight: op.dest.weight, forward: op.dest.forward } : d));
        return;
      }
      case 'ipset-create':
        this.#ipsets.set(op.set.name, { ...op.set, entries: new Set() });
        return;
      case 'ipset-add':
        this.#ipsets.get(op.set)?.entries.add(op.entry);
        return;
      case 'ipset-del':
        this.#ipsets.get(op.set)?.entries.delete(op.entry);
        return;
      case 'bind':
        this.#bound.set(op.address, op.family);
        return;
      case 'unbind':
        this.#bound.delete(op.address);
    }
  }

  /** The IPVS table (both families), virtual servers in creation order, dests in the kernel's list order. */
  table(): IpvsTable {
    return { services: [...this.#services.values()] };
  }

  /** The sets, in creation order. */
  ipsets(): IPSet[] {
    return [...this.#ipsets.values()];
  }

  /** Addresses on kube-ipvs0, in the order they were bound. */
  boundAddresses(family?: Family): string[] {
    return [...this.#bound].filter(([, f]) => family === undefined || f === family).map(([address]) => address);
  }

  /** The iptables tables of one family's proxier. */
  iptables(family: Family): IptablesKernel {
    let iptables = this.#iptables.get(family);
    if (iptables === undefined) this.#iptables.set(family, (iptables = new IptablesKernel(family)));
    return iptables;
  }
}

/** syncService's VirtualServer.Equal: the fields ipvsadm -E can change. */
function sameService(a: VirtualServer, b: VirtualServer): boolean {
  return a.scheduler === b.scheduler && a.flags === b.flags && a.timeoutSeconds === b.timeoutSeconds && a.netmaskPrefix === b.netmaskPrefix;
}

/**
 * A sync as the commands that make it: `ipvsadm-restore` lines (-A/-E/-D services, -a/-e/-d
 * real servers), `ipset restore` lines, `ip addr` lines for kube-ipvs0, then the
 * `iptables-restore --noflush` input. Each part after a comment line naming its tool.
 */
export function renderIpvsPayload(payload: IpvsSyncPayload): string {
  const ipvsadm: string[] = [];
  const ipset: string[] = [];
  const ip: string[] = [];
  for (const op of payload.operations) {
    switch (op.kind) {
      case 'add-service':
        ipvsadm.push(`-A ${ipvsadmServiceName(op.vs)}${ipvsadmServiceOptions(op.vs)}`);
        break;
      case 'edit-service':
        ipvsadm.push(`-E ${ipvsadmServiceName(op.vs)}${ipvsadmServiceOptions(op.vs)}`);
        break;
      case 'del-service':
        ipvsadm.push(`-D ${ipvsadmServiceName(op.vs)}`);
        break;
      case 'add-dest':
        ipvsadm.push(`-a ${ipvsadmServiceName(op.vs)} ${ipvsadmDestOptions(op.dest)}`);
        break;
      case 'edit-dest':
        ipvsadm.push(`-e ${ipvsadmServiceName(op.vs)} ${ipvsadmDestOptions(op.dest)}`);
        break;
      case 'del-dest':
        ipvsadm.push(`-d ${ipvsadmServiceName(op.vs)} -r ${destAddr(op.dest)}`);
        break;
      case 'ipset-create':
        ipset.push(ipsetCreateLine(op.set));
        break;
      case 'ipset-add':
        ipset.push(`add ${op.set} ${op.entry}`);
        break;
      case 'ipset-del':
        ipset.push(`del ${op.set} ${op.entry}`);
        break;
      case 'bind':
      case 'unbind':
        ip.push(`ip addr ${op.kind === 'bind' ? 'add' : 'del'} ${op.address}/${op.family === 4 ? 32 : 128} dev ${DUMMY_DEVICE}`);
    }
  }
  const part = (title: string, lines: readonly string[]): string => `# ${title}\n${lines.map((l) => `${l}\n`).join('')}`;
  return part('ipvsadm-restore', ipvsadm) + part('ipset restore', ipset) + part(`ip addr (${DUMMY_DEVICE})`, ip) + part('iptables-restore --noflush', [renderRestore(payload.iptables).trimEnd()]);
}
