/**
 * Service ports' rules shared across a cluster's nodes as iptables-save text, for syncs written
 * straight to text (compileIptablesSave with shared work, what `kpsim compile` and a node's
 * render print). The Ruleset's fragments (shared-rules.ts) are rule objects: hundreds of
 * thousands of them for a big cluster, each kept alive for the next node and rendered again by
 * every node that prints its ruleset. Here a port's rules are written once as bytes, kept as
 * strings without pointers (nothing for the garbage collector to trace), and every node that
 * shares the port takes that text into its own; no node re-reads them as rules.
 *
 * A text fragment is what the port's compile wrote, split as the text sink lays it out: the
 * rules it appended to the fixed chains (KUBE-SERVICES, KUBE-NODEPORTS, ...) and its own nat
 * chains, declarations and rules, in declaration order. Its KUBE-SEP chains are one block,
 * which other views of the port (a node's own, with a local endpoint) take over, as are the
 * KUBE-SVC/KUBE-SVL chains over the same endpoints (PortReuse). Bytes once written never change.
 */
import type { EndpointBlock } from '../topology/endpoint-blocks.js';
import type { EndpointChainShape, PolicyChainPlan } from './deferred-chains.js';
import { writePolicyChainRules } from './deferred-chains.js';
import { KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_MARK_MASQ, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_PROXY_FIREWALL, KUBE_SERVICES } from './names.js';
import type { EndpointInfo, ProxierServicePort } from '../tracker/types.js';
import type { PortReuse } from './port-reuse.js';
import type { RuleSink } from './rule-sink.js';
import { TextBuffer } from './save-text.js';
import { writeEndpointChainsText } from './service-port-chains.js';
import { writeServicePortRules } from './service-rules.js';
import type { FixedChains, SyncContext } from './sync-context.js';
import { type IptablesTextSink, type PieceList, type TextChain, addPiece } from './text-sink.js';
import type { TableName } from './types.js';

/** The fixed chains by number, as a fragment's fixed-chain runs name them. */
const FIXED_KEYS = [
  'filterServices', 'filterExternalServices', 'filterForward', 'filterNodePorts', 'filterProxyFirewall',
  'natServices', 'natNodePorts', 'natPostrouting', 'natMarkMasq',
] as const satisfies readonly (keyof FixedChains)[];

/**
 * What one service port wrote, as one flat list: a big cluster keeps one for each of its 12k+
 * ports for every node after the first, and an object for the fragment, lists for its parts and
 * an object for each piece were some 500 bytes a port. The list holds:
 *
 *   fixedText, n, then n runs (FIXED_KEYS index, start, end) of fixedText's bytes: the rules for
 *   the fixed chains, in the order written;
 *   d, then d pieces (PieceList: buffer, start, end): the declarations of the port's own nat
 *   chains; then to the end, pieces: their rules, in the same order.
 */
export type TextFragment = readonly (TextBuffer | number)[];

/** A chain the recorder declared (or a fixed chain, `fixed` >= 0), with where its text is. */
export interface RecordedChain {
  readonly name: string;
  /** Its FIXED_KEYS index, or -1 for a chain of the port. */
  readonly fixed: number;
  /** Where its declaration is: bytes [declarationStart, declarationEnd) of `declarationFrom` (numbers, not a piece: one per KUBE-SEP chain). */
  readonly declarationFrom: TextBuffer;
  readonly declarationStart: number;
  readonly declarationEnd: number;
  readonly rulesFrom: TextBuffer;
  readonly rulesStart: number;
  rulesEnd: number;
}

/** A port's KUBE-SEP chains: their declarations and their rules, each one stretch of a buffer (numbers, not pieces: one object a block). */
interface TextEndpointBlock extends EndpointBlock {
  readonly declarationsFrom: TextBuffer;
  readonly declarationsStart: number;
  readonly declarationsEnd: number;
  readonly rulesFrom: TextBuffer;
  readonly rulesStart: number;
  readonly rulesEnd: number;
}

export type TextPortReuse = PortReuse<RecordedChain, TextEndpointBlock>;

/** A buffer is left for a new one between fragments once it holds this much of its capacity. */
const CHUNK_BYTES = { fixed: 1 << 20, declarations: 1 << 20, rules: 4 << 20 };

/**
 * Room left before the text of a rules buffer (TextBuffer.withRoomBefore): address space only
 * until written. The node that writes most ports' rules (the first of a cluster) takes them as
 * one run of its text, and the text before them (its filter table, the nat declarations and the
 * fixed chains' rules: 8 MB for 10k services) is written into this room when the node's text is
 * made (IptablesTextSink.finish): the rules are then bytes of the node's text where they were
 * written, not copied, and the text made once, with them as a slice of it.
 */
const RULES_ROOM_BEFORE = 64 << 20;

/**
 * Where text fragments are written: the fixed-chain rules, the declarations and the rules of
 * the ports' own chains each in their own buffer, a new one started between two fragments once
 * one is three quarters full (a fragment's pieces stay where they were written).
 */
export class TextFragmentArena implements RuleSink<RecordedChain> {
  readonly copiesArgs = true;
  #fixedText = new TextBuffer(CHUNK_BYTES.fixed);
  #declarations = new TextBuffer(CHUNK_BYTES.declarations);
  #rules = TextBuffer.withRoomBefore(CHUNK_BYTES.rules, RULES_ROOM_BEFORE);
  readonly #fixedChains: FixedChains<RecordedChain>;

  // The fragment being written.
  readonly #fixedRuns: number[] = [];
  readonly #declarationPieces: PieceList = [];
  readonly #rulePieces: PieceList = [];
  /** Where the bytes not yet in a piece start. */
  #declarationsFrom = 0;
  #rulesFrom = 0;
  /** The chain whose rules end #rules. */
  #filling: RecordedChain | undefined;
  /** Where the fragment's KUBE-SEP block (writeEndpointChains) starts in #declarations and #rules; -1 while none is written. */
  #endpointDeclarationsAt = -1;
  #endpointRulesAt = -1;

  constructor() {
    const chains = {} as Record<keyof FixedChains, RecordedChain>;
    FIXED_KEYS.forEach((key, i) => {
      chains[key] = { name: fixedChainName(key), fixed: i, declarationFrom: this.#declarations, declarationStart: 0, declarationEnd: 0, rulesFrom: this.#rules, rulesStart: 0, rulesEnd: 0 };
    });
    this.#fixedChains = chains;
  }

  /**
   * The context a port's rules are written in, by the node's: the node's, with this arena as
   * the sink and the port's reuse. Made once per node's context and given each port's reuse in
   * turn: a copy of the context for each port (a spread, some 700 bytes) was 9 MB of garbage
   * for a big cluster's first node. Weak: a node's context is not kept past its sync.
   */
  readonly #portContexts = new WeakMap<SyncContext<unknown>, Mutable<SyncContext<RecordedChain>>>();

  /** Write the rules of `sp` on the node of `ctx` as a fragment. */
  write(ctx: SyncContext<unknown>, sp: ProxierServicePort, reuse: TextPortReuse): TextFragment {
    this.#begin();
    reuse.blocks.taken = undefined;
    let portCtx = this.#portContexts.get(ctx);
    if (portCtx === undefined) this.#portContexts.set(ctx, (portCtx = { ...ctx, out: this, reuse }));
    portCtx.reuse = reuse;
    writeServicePortRules(portCtx, this.#fixedChains, sp);

    let block: TextEndpointBlock | undefined = reuse.blocks.taken;
    if (block === undefined) {
      // The KUBE-SEP chains are the last ones writeServicePortRules declares, one per reachable
      // endpoint, all written by writeEndpointChains (no single KUBE-SEP chain is taken over): one block.
      const endpoints = sp.categorized.allReachableEndpoints;
      const declarationsAt = this.#endpointDeclarationsAt;
      const rulesAt = this.#endpointRulesAt;
      if (declarationsAt < this.#declarationsFrom || rulesAt < this.#rulesFrom) {
        throw new Error(`${sp.info.spn}: the KUBE-SEP chains were not written last, as one block`);
      }
      addPiece(this.#declarationPieces, this.#declarations, this.#declarationsFrom, declarationsAt);
      addPiece(this.#rulePieces, this.#rules, this.#rulesFrom, rulesAt);
      block = {
        endpoints,
        declarationsFrom: this.#declarations,
        declarationsStart: declarationsAt,
        declarationsEnd: this.#declarations.length,
        rulesFrom: this.#rules,
        rulesStart: rulesAt,
        rulesEnd: this.#rules.length,
      };
      reuse.blocks.keep(block);
    } else {
      this.#closePieces();
    }
    addPiece(this.#declarationPieces, block.declarationsFrom, block.declarationsStart, block.declarationsEnd);
    addPiece(this.#rulePieces, block.rulesFrom, block.rulesStart, block.rulesEnd);
    return this.#fragment();
  }

  /**
   * The fragment written (TextFragment), one list of exactly its length: the lists it is made of
   * are the writer's, used again for the next fragment (and a list grown by push keeps room for
   * 17, where a big cluster keeps a fragment for each of its 12k+ ports).
   */
  #fragment(): TextFragment {
    const fixed = this.#fixedRuns;
    const declarations = this.#declarationPieces;
    const rules = this.#rulePieces;
    const fragment = new Array<TextBuffer | number>(3 + fixed.length + declarations.length + rules.length);
    let at = 0;
    fragment[at++] = this.#fixedText;
    fragment[at++] = fixed.length / 3;
    for (let i = 0; i < fixed.length; i++) fragment[at++] = fixed[i]!;
    fragment[at++] = declarations.length / 3;
    for (let i = 0; i < declarations.length; i++) fragment[at++] = declarations[i]!;
    for (let i = 0; i < rules.length; i++) fragment[at++] = rules[i]!;
    return fragment;
  }

  #begin(): void {
    // A chunk left behind becomes a string (TextBuffer.seal), and its bytes take the next chunk.
    // A node's text, mostly these strings, is then joined from slices of them, made once
    // (IptablesTextSink.finish): kept as bytes (shared memory, which V8 would not count either),
    // they would have to be copied into a buffer of the node's text first, 45 MB more memory
    // touched on the first node of a 10k-service cluster and no faster on the next (measured).
    if (this.#fixedText.length > (CHUNK_BYTES.fixed * 3) / 4) this.#fixedText = this.#fixedText.seal();
    if (this.#declarations.length > (CHUNK_BYTES.declarations * 3) / 4) this.#declarations = this.#declarations.seal();
    // The rules buffer grows through a sync (see syncStarts); a node's text may have sealed it in
    // place, or kept it as bytes (its text output as bytes).
    if (this.#rules.isSealed || this.#rules.isKept) this.#rules = TextBuffer.withRoomBefore(CHUNK_BYTES.rules, RULES_ROOM_BEFORE);
    this.#fixedRuns.length = 0;
    this.#declarationPieces.length = 0;
    this.#rulePieces.length = 0;
    this.#declarationsFrom = this.#declarations.length;
    this.#rulesFrom = this.#rules.length;
    this.#filling = undefined;
    this.#endpointDeclarationsAt = -1;
    this.#endpointRulesAt = -1;
  }

  /**
   * A node's sync starts taking fragments. The rules buffer is left for a new one only here, not
   * between fragments: the rules a node writes are then one run of one buffer, which its text
   * can take in place (RULES_ROOM_BEFORE). Its bytes go on to the next buffer (TextBuffer.seal).
   */
  syncStarts(): void {
    const rules = this.#rules;
    // A buffer kept as bytes is left for a new one by #begin, as a sealed one is.
    if (!rules.isSealed && !rules.isKept && rules.length - rules.roomBefore > (CHUNK_BYTES.rules * 3) / 4) this.#rules = rules.seal();
  }

  /** The bytes written since the last piece, as pieces. */
  #closePieces(): void {
    addPiece(this.#declarationPieces, this.#declarations, this.#declarationsFrom, this.#declarations.length);
    addPiece(this.#rulePieces, this.#rules, this.#rulesFrom, this.#rules.length);
    this.#declarationsFrom = this.#declarations.length;
    this.#rulesFrom = this.#rules.length;
  }

  declareChain(table: TableName, name: string): RecordedChain {
    if (table !== 'nat') throw new Error(`chain ${name}: a service port declared a ${table} chain; fragments keep nat chains only`);
    const start = this.#declarations.length;
    this.#declarations.writeChainDeclaration(name, undefined);
    const rulesStart = this.#rules.length;
    const chain: RecordedChain = {
      name, fixed: -1, declarationFrom: this.#declarations, declarationStart: start, declarationEnd: this.#declarations.length, rulesFrom: this.#rules, rulesStart, rulesEnd: rulesStart,
    };
    this.#filling = chain;
    return chain;
  }

  /** A KUBE-SVC or KUBE-SVL chain, its lines written from its plan through the line scratch (as the Ruleset's render writes them). */
  writePolicyChain(table: TableName, name: string, plan: PolicyChainPlan): RecordedChain {
    const chain = this.declareChain(table, name);
    writePolicyChainRules(this.#rules, name, plan);
    chain.rulesEnd = this.#rules.length;
    this.#filling = undefined;
    return chain;
  }

  /** The port's KUBE-SEP chains, as one block (the fragment's, which other views of the port take over): no handle per chain. */
  writeEndpointChains(table: TableName, shape: EndpointChainShape, endpoints: readonly EndpointInfo[], names: readonly string[]): void {
    if (table !== 'nat') throw new Error(`${shape.spn}: KUBE-SEP chains declared in ${table}; fragments keep nat chains only`);
    this.#endpointDeclarationsAt = this.#declarations.length;
    this.#endpointRulesAt = this.#rules.length;
    writeEndpointChainsText(this.#declarations, this.#rules, shape, endpoints, names);
    this.#filling = undefined;
  }

  appendRule(chain: RecordedChain, args: readonly string[]): void {
    if (chain.fixed >= 0) {
      const text = this.#fixedText;
      const start = text.length;
      text.writeRule(chain.name, args);
      const runs = this.#fixedRuns;
      const n = runs.length;
      if (n > 0 && runs[n - 3] === chain.fixed && runs[n - 1] === start) runs[n - 1] = text.length;
      else runs.push(chain.fixed, start, text.length);
      return;
    }
    // kube-proxy fills each of a port's chains before it declares the next.
    if (chain !== this.#filling) throw new Error(`chain ${chain.name}: a rule came after the next chain was declared`);
    this.#rules.writeRule(chain.name, args);
    chain.rulesEnd = this.#rules.length;
  }

  writeChain(table: TableName, name: string, rules: readonly (readonly string[])[]): RecordedChain {
    const chain = this.declareChain(table, name);
    for (let i = 0; i < rules.length; i++) this.appendRule(chain, rules[i]!);
    return chain;
  }

  /** A chain another fragment wrote (a policy chain over the same endpoints): its text is taken as it is. */
  adoptChain(_table: TableName, chain: RecordedChain): void {
    this.#closePieces();
    addPiece(this.#declarationPieces, chain.declarationFrom, chain.declarationStart, chain.declarationEnd);
    addPiece(this.#rulePieces, chain.rulesFrom, chain.rulesStart, chain.rulesEnd);
    this.#filling = undefined;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };


/** Put a fragment into a node's text: its fixed-chain rules at the end of those chains, its own chains declared and filled. */
export function emitTextFragment(fragment: TextFragment, fixed: FixedChains<TextChain>, out: IptablesTextSink): void {
  const fixedText = fragment[0] as TextBuffer;
  const fixedEnd = 2 + 3 * (fragment[1] as number);
  for (let i = 2; i < fixedEnd; i += 3) out.appendRuleText(fixed[FIXED_KEYS[fragment[i] as number]!], fixedText, fragment[i + 1] as number, fragment[i + 2] as number);
  const declarations = fragment[fixedEnd] as number;
  if (declarations > 0) out.adoptPieces('nat', fragment, fixedEnd + 1, fixedEnd + 1 + 3 * declarations);
}

function fixedChainName(key: keyof FixedChains): string {
  return FIXED_CHAIN_NAMES[key];
}

/** The chain each of FixedChains stands for (fixed-rules.ts declares them). */
const FIXED_CHAIN_NAMES: Readonly<Record<keyof FixedChains, string>> = {
  filterServices: KUBE_SERVICES,
  filterExternalServices: KUBE_EXTERNAL_SERVICES,
  filterForward: KUBE_FORWARD,
  filterNodePorts: KUBE_NODEPORTS,
  filterProxyFirewall: KUBE_PROXY_FIREWALL,
  natServices: KUBE_SERVICES,
  natNodePorts: KUBE_NODEPORTS,
  natPostrouting: KUBE_POSTROUTING,
  natMarkMasq: KUBE_MARK_MASQ,
};
