/**
 * The rule of a service- or local- chain that picks one of the port's endpoints:
 *
 *   numgen random mod 3 vmap { 0 : goto endpoint-A , 1 : goto endpoint-B , 2 : goto endpoint-C }
 *
 * kept as the endpoint chains' names (strings that exist anyway) instead of its text. A
 * cluster's service chains together go to every endpoint (150k at 5,000 nodes): their texts were
 * 10 MB made on the first node, copied by the young generation's scavenges, kept, then copied
 * once more into the rendered script. The script's renderer writes the rule's words
 * (writeText); the text is made the first time something reads `text` (a tracer, a parser, a
 * kernel model) and kept from then on.
 */
import type { NftRule, TextWriter } from './types.js';

export class NumgenVmapRule implements NftRule {
  /** The chain each index of the draw goes to, in index order. */
  readonly targets: readonly string[];
  #text: string | undefined;

  constructor(targets: readonly string[]) {
    this.targets = targets;
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
    const targets = this.targets;
    out.push(modHead(targets.length));
    for (let i = 0; i < targets.length; i++) out.push(entryHead(i), targets[i]!);
    out.push(' }');
  }

  /** The rule's text written onto `out`: constants and the targets' names, nothing made per rule. */
  writeText(out: TextWriter): void {
    if (this.#text !== undefined) {
      out.write(this.#text);
      return;
    }
    const targets = this.targets;
    out.write(modHead(targets.length));
    for (let i = 0; i < targets.length; i++) {
      out.write(entryHead(i));
      out.write(targets[i]!);
    }
    out.write(' }');
  }
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
