/**
 * What a proxy mode is to the rest of kpsim: one driver per mode, looked up in one table
 * (modes.ts). The CLI, the API, the library, `demo`, `compare` and `simulate` ask the driver to
 * compile a node, render it, trace through it and place connections on it, and never branch on
 * the mode themselves, so that they answer alike by construction. A new mode is a folder beside
 * src/iptables/ and src/ipvs/ plus one driver here.
 */
import type { Picker } from '../simulate/picker.js';
import type { Packet, TraceContext } from '../trace/types.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierServicePort, ProxierState, ServicePortInfo } from '../tracker/types.js';
import type { Family } from '../util/ip.js';
import type { Rng } from '../util/random.js';
import type { NodeTracer } from './trace-context.js';

/** The modes kpsim compiles (the userspace proxy runs for real instead: src/proxy/). */
export type RulesMode = 'iptables' | 'ipvs' | 'nftables';

/**
 * What a mode can print. `kube-proxy` is what the mode hands to the kernel (iptables-restore
 * input, the IPVS table as `ipvsadm -Ln` lists it); the others are the mode's other views.
 */
export type OutputFormat = 'kube-proxy' | 'canonical' | 'stats' | 'rate' | 'ipsets' | 'iptables';

/** Every option any mode's compiler takes; a mode reads the ones it knows. */
export interface ModeCompileOptions {
  /** iptables: add the built-in chains with kube-proxy's jumps. */
  withJumps?: boolean;
  /** iptables: keep the `-m nfacct` matches of localhost node ports (default true). */
  nfacct?: boolean;
  /** Add --random-fully to MASQUERADE rules. */
  randomFully?: boolean;
  /** ipvs: instead of the configuration's ipvs.scheduler. */
  scheduler?: string;
  /**
   * ipvs: the table some time into a rollout, terminating TCP endpoints still draining at weight 0
   * (what the simulations replay); a compile from manifests is one sync and has none (default).
   */
  gracefulTermination?: boolean;
  /**
   * What compiles of other nodes of the same cluster did that this one can take over
   * (ModeDriver.shareAcrossNodes): the result is the same, only faster. A mode without sharing
   * ignores it.
   */
  shared?: SharedModeWork;
  /**
   * Write only these service ports, and the rest of the node's rules as usual: what one packet to
   * these ports crosses (a cluster-wide trace compiles many nodes this way). A mode may ignore it
   * and write them all.
   */
  onlyServicePorts?: (info: ServicePortInfo) => boolean;
  /**
   * With onlyServicePorts, per family: the positions in that family's state.servicePorts of every
   * port it takes, in order, so that a compile need not ask it of every port of a big cluster.
   * A family not in the map is asked port by port. A mode may ignore it.
   */
  servicePortPositions?: ReadonlyMap<Family, readonly number[]>;
}

/** A mode's work shared by the compiles of every node of one cluster (opaque to everyone but the mode). */
export interface SharedModeWork {
  readonly mode: RulesMode;
}

/** How much a mode wrote on a node, for `kpsim nodes`. */
export interface ModeSize {
  /** The headline figure: rules (iptables), virtual servers (IPVS), ... */
  readonly count: number;
  /** What `count` counts, plural: "rules", "virtual servers". */
  readonly unit: string;
  /** Other figures, by name ("chains", "real servers"). */
  readonly details: Readonly<Record<string, number>>;
}

/** One node compiled in one mode: what every driver's compile returns. */
export interface CompiledNode {
  readonly mode: RulesMode;
  readonly node: ResolvedNode;
  /** One per family, IPv4 first. */
  readonly states: readonly ProxierState[];
}

/** The service port a simulation sends new connections to, and where. */
export interface SimulationTarget {
  readonly state: ProxierState;
  readonly servicePort: ProxierServicePort;
  /** The address and port connections are made to (a ClusterIP, or a node address and node port). */
  readonly address: string;
  readonly port: number;
  readonly proto: Packet['proto'];
}

export interface PickerOptions {
  /** Seed of the mode's own random draws (iptables' statistic, IPVS's twos). */
  readonly seed: number;
  /** Another random source for the same purpose, when the caller keeps one. */
  readonly rng?: Rng;
}

/** One run of a mode in a simulation: the options it is compiled with and its report label. */
export interface ModeVariant {
  /** "random" for iptables; the scheduler for IPVS. */
  readonly scheduler: string;
  readonly options: ModeCompileOptions;
}

export interface ModeDriver<C extends CompiledNode = CompiledNode> {
  readonly mode: RulesMode;
  /** What `kpsim compile --mode X` prints by default, for --help. */
  readonly describe: string;
  /** The formats this mode renders; the first is the default. */
  readonly formats: readonly OutputFormat[];
  /** The compile options this mode reads (the CLI refuses the others with a usage error). */
  readonly options: readonly (keyof ModeCompileOptions)[];
  /**
   * What holds this mode's connections over time (`kpsim simulate --events`): the kernel's
   * conntrack table in front of the rules (iptables, nftables), or IPVS's own connection table.
   */
  readonly connectionTable: 'conntrack' | 'ipvs';

  compile(node: ResolvedNode, states: readonly ProxierState[], opts?: ModeCompileOptions): C;
  /** The text of every family, as one would feed it to (or read it from) the kernel. */
  render(compiled: C, format: OutputFormat): string;
  /**
   * render's text as bytes (UTF-8), for output that is bytes anyway (a command's standard
   * output), when the mode writes them without making a string of the text (which is as much
   * memory again, fresh); undefined for a format it makes only as a string. Modes and formats
   * without it are output as strings (renderOutput below).
   */
  renderBytes?(compiled: C, format: OutputFormat): Uint8Array | undefined;
  tracer(compiled: C): NodeTracer;

  /** A one-line summary per family, for `kpsim demo` (same order as `compiled.states`). */
  summarize(compiled: C): string[];

  /**
   * Optional: the work this mode can share between the compiles of different nodes of one
   * cluster with these options (pass it back as `opts.shared`). Without it every node is
   * compiled on its own.
   */
  shareAcrossNodes?(opts: ModeCompileOptions): SharedModeWork;
  /** Optional: what `kpsim nodes` shows of a compiled node (every family together). */
  size?(compiled: C): ModeSize;
  /**
   * Optional: the same figures as size(compile(...)), without keeping the node's rules: with
   * `opts.shared`, a mode may add up what it shares instead of assembling every node's rules.
   */
  sizeOf?(node: ResolvedNode, states: readonly ProxierState[], opts?: ModeCompileOptions): ModeSize;

  /** The runs a simulation makes of this mode: one, or one per IPVS scheduler asked for. */
  variants(schedulers: readonly string[]): ModeVariant[];
  /** Places new connections to `target` as this mode would on the node. */
  picker(compiled: C, target: SimulationTarget, opts: PickerOptions): Picker;
  /** Each endpoint's share of new connections in the long run, for fairness tests. */
  expectedShares(compiled: C, target: SimulationTarget): Map<string, number>;
  /**
   * The rules a new connection's first packet is checked against in this mode, on average over
   * `packets` (up to each rule that matched: a lower bound).
   */
  rulesPerLookup(compiled: C, packets: readonly Packet[]): number;
}

/** A mode's view of rules read from a node's dump (iptables-save text, ...), when it has one. */
export interface DumpReader {
  /** The flag that names a dump file, e.g. --iptables-save. */
  readonly flag: string;
  readonly mode: RulesMode;
  tracer(texts: readonly { file: string; text: string }[], context: TraceContext): NodeTracer;
}

/**
 * The mode's text for `format` as output: its bytes when the mode writes them without a string
 * (renderBytes), else its string (which a stream encodes as it writes it).
 */
export function renderOutput<C extends CompiledNode>(driver: ModeDriver<C>, compiled: C, format: OutputFormat): string | Uint8Array {
  return driver.renderBytes?.(compiled, format) ?? driver.render(compiled, format);
}
