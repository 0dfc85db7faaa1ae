/**
 * What kube-proxy hands the kernel on a sync after the first, written from two rulesets' texts
 * (pure): the full one it renders every time, and the part a partial (iptables) or incremental
 * (nftables) sync writes for a change. `kpsim lab sync-bench` times the kernel taking each.
 *
 * iptables (pkg/proxy/iptables/proxier.go syncProxyRules): every sync writes the whole filter
 * table and nat's fixed chains with all their rules; a service's KUBE-SVC/SVL/EXT/FW/SEP chains
 * only when they changed; a chain no longer used as `:CHAIN` plus `-X CHAIN`; all through
 * `iptables-restore --noflush --counters`, so that unmentioned chains stay as they are.
 *
 * nftables (pkg/proxy/nftables/proxier.go, knftables transactions): new chains and sets are
 * added; a changed chain is flushed and rewritten; map and set elements are diffed (a new key
 * added, a changed value deleted and re-added, a gone key deleted); stale chains flushed and
 * deleted.
 */

// ---------------------------------------------------------------- iptables

interface SaveTable {
  readonly name: string;
  /** Chain declaration lines in order, by chain. */
  readonly chains: Map<string, string>;
  readonly rules: Map<string, string[]>;
}

function parseSave(text: string): SaveTable[] {
  const tables: SaveTable[] = [];
  let table: SaveTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = { name: line.slice(1).trim(), chains: new Map(), rules: new Map() };
      tables.push(table);
    } else if (table !== undefined && line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      table.chains.set(name, line);
    } else if (table !== undefined && line.startsWith('-A ')) {
      const name = line.split(' ')[1]!;
      table.rules.set(name, [...(table.rules.get(name) ?? []), line]);
    }
  }
  return tables;
}

/** The per-service chains a partial sync may skip. */
const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/** kube-proxy's iptables-restore input for a partial sync from `before` to `after`. */
export function iptablesPartialRestore(before: string, after: string): string {
  const old = new Map(parseSave(before).map((t) => [t.name, t]));
  const out: string[] = [];
  for (const table of parseSave(after)) {
    const prev = old.get(table.name);
    const written = [...table.chains.keys()].filter((chain) =>
      table.name !== 'nat' || !SERVICE_CHAIN.test(chain) || !sameRules(prev?.rules.get(chain), table.rules.get(chain)) || !prev?.chains.has(chain));
    const stale = [...(prev?.chains.keys() ?? [])].filter((chain) => SERVICE_CHAIN.test(chain) && !table.chains.has(chain));
    out.push(`*${table.name}`);
    for (const chain of written) out.push(table.chains.get(chain)!);
    for (const chain of stale) out.push(prev!.chains.get(chain)!);
    for (const chain of written) out.push(...(table.rules.get(chain) ?? []));
    for (const chain of stale) out.push(`-X ${chain}`);
    out.push('COMMIT');
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- nftables

interface NftScript {
  tables: string[];
  /** "add chain F T C ..." lines by "F T C". */
  chains: Map<string, string>;
  /** "add set|map F T S ..." lines by "F T S". */
  sets: Map<string, string>;
  rules: Map<string, string[]>;
  /** Elements by set ("F T S"), then by key. */
  elements: Map<string, Map<string, string>>;
}

function parseNftScript(text: string): NftScript {
  const script: NftScript = { tables: [], chains: new Map(), sets: new Map(), rules: new Map(), elements: new Map() };
  for (const line of text.split('\n')) {
    const words = line.split(' ');
    const [verb, kind, family, table, name] = words;
    if (verb !== 'add' || family === undefined || table === undefined) continue;
    const id = `${family} ${table} ${name ?? ''}`;
    if (kind === 'table') script.tables.push(line);
    else if (kind === 'chain') script.chains.set(id, line);
    else if (kind === 'set' || kind === 'map') script.sets.set(id, line);
    else if (kind === 'rule') script.rules.set(id, [...(script.rules.get(id) ?? []), line]);
    else if (kind === 'element') {
      const body = /\{ (.*) \}$/.exec(line)?.[1];
      if (body === undefined) continue;
      const byKey = script.elements.get(id) ?? new Map<string, string>();
      byKey.set(elementKey(body), line);
      script.elements.set(id, byKey);
    }
  }
  return script;
}

/** An element's key: the part before " : value", without timeout, expiry or comment. */
function elementKey(body: string): string {
  const key = body.split(' : ')[0]!;
  return key.replace(/ (timeout|expires) \S+/g, '').replace(/ comment "(?:[^"\\]|\\.)*"/, '').trim();
}

/** The table's contents emptied before the full text is loaded again: kube-proxy's full sync. */
export function nftFullScript(text: string): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('add table '));
  if (at < 0) return text;
  const [, , family, table] = lines[at]!.split(' ');
  lines.splice(at + 1, 0, `flush table ${family} ${table}`);
  return lines.join('\n');
}

/** A knftables transaction taking a table written by `before` to `after`. */
export function nftIncrementalScript(before: string, after: string): string {
  const old = parseNftScript(before);
  const now = parseNftScript(after);
  const out: string[] = [...now.tables];
  for (const [id, line] of now.chains) if (!old.chains.has(id)) out.push(line);
  for (const [id, line] of now.sets) if (!old.sets.has(id)) out.push(line);
  for (const id of now.chains.keys()) {
    if (old.chains.has(id) && sameRules(old.rules.get(id), now.rules.get(id))) continue;
    if (old.chains.has(id)) out.push(`flush chain ${id}`);
    out.push(...(now.rules.get(id) ?? []));
  }
  for (const [id, elements] of now.elements) {
    const previous = old.elements.get(id);
    for (const [key, line] of elements) {
      const had = previous?.get(key);
      if (had === line) continue;
      if (had !== undefined) out.push(`delete element ${id} { ${key} }`);
      out.push(line);
    }
  }
  for (const [id, elements] of old.elements) {
    if (!now.sets.has(id)) continue;
    for (const key of elements.keys()) if (!now.elements.get(id)?.has(key)) out.push(`delete element ${id} { ${key} }`);
  }
  for (const id of old.chains.keys()) if (!now.chains.has(id)) out.push(`flush chain ${id}`, `delete chain ${id}`);
  for (const id of old.sets.keys()) if (!now.sets.has(id)) out.push(`delete ${old.sets.get(id)!.split(' ')[1]} ${id}`);
  return `${out.join('\n')}\n`;
}
