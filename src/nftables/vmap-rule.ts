/**
 * The rule of a service- or local- chain that picks one of the port's endpoints:
 *
 *   numgen random mod 3 vmap { 0 : goto endpoint-A , 1 : goto endpoint-B , 2 : goto endpoint-C }
 *
 * kept as the endpoint chains (objects that exist anyway; or their names) instead of its text. A
 * cluster's service chains together go to every endpoint (150k at 5,000 nodes): their texts were
 * 10 MB made on the first node, copied by the young generation's scavenges, kept, then copied
 * once more into the rendered script. The script's renderer writes the rule's words
 * (writeText), an endpoint chain's name from what it is made of (endpoint-chain.ts); the text is
 * made the first time something reads `text` (a tracer, a parser, a kernel model) and kept from
 * then on.
 */
import { EndpointChain } from './endpoint-chain.js';
import { ENDPOINT_PREFIX, keptAsciiBytes } from './names.js';
import type { ByteTextWriter, NftChain, NftRule } from './types.js';

/** A verdict map's target: a chain's name, or the chain. */
export type VmapTarget = string | NftChain;

export class NumgenVmapRule implements NftRule {
  readonly #targets: readonly VmapTarget[];
  #text: string | undefined;

  /** `targets`: the chain each index of the draw goes to, in index order. */
  constructor(targets: readonly VmapTarget[]) {
    this.#targets = targets;
  }

  /** The name of the chain each index of the draw goes to, in index order. */
  get targets(): readonly string[] {
    return this.#targets.map(targetName);
  }

  get text(): string {
    if (this.#text === undefined) {
      const out: string[] = [];
      this.pushText(out);
      this.#text = out.join('');
    }
    return this.#text;
  }

  /** The rule's text onto `out` as pieces: constants and the targets' names, nothing made per rule. */
  pushText(out: string[]): void {
    if (this.#text !== undefined) {
      out.push(this.#text);
      return;
    }
    const targets = this.#targets;
    out.push(modHead(targets.length));
    for (let i = 0; i < targets.length; i++) out.push(entryHead(i), targetName(targets[i]!));
    out.push(' }');
  }

  /** The rule's text written onto `out`: constants and the targets' names, nothing made per rule. */
  writeText(out: ByteTextWriter): void {
    if (this.#text !== undefined) {
      out.write(this.#text);
      return;
    }
    const targets = this.#targets;
    out.write(modHead(targets.length));
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      if (target instanceof EndpointChain) {
        target.writeNameAfter(entryHead(i), out, entryHeadNameBytes(i));
      } else {
        out.write(entryHead(i));
        out.write(targetName(target));
      }
    }
    out.write(' }');
  }
}

function targetName(target: VmapTarget): string {
  return typeof target === 'string' ? target : target.name;
}

/** "numgen random mod N vmap { " by N, and " , I : goto " by I: made once, shared by every rule. */
const modHeads: string[] = [];
const entryHeads: string[] = [];

function modHead(n: number): string {
  return (modHeads[n] ??= `numgen random mod ${n} vmap { `);
}

function entryHead(i: number): string {
  return (entryHeads[i] ??= i === 0 ? '0 : goto ' : ` , ${i} : goto `);
}

/** entryHead(i) and "endpoint-" as bytes, by I: what an endpoint chain written from its hash starts with (endpoint-chain.ts). */
const entryHeadsNameBytes: Uint8Array[] = [];

function entryHeadNameBytes(i: number): Uint8Array {
  return (entryHeadsNameBytes[i] ??= keptAsciiBytes(entryHead(i) + ENDPOINT_PREFIX));
}
