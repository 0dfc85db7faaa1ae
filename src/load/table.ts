/** Plain-text tables for reports: columns padded to their widest cell, numbers aligned right. */

export type Align = 'left' | 'right';

export interface Column {
  header: string;
  align?: Align;
}

export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[], indent = ''): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    indent + columns.map((c, i) => {
      const cell = cells[i] ?? '';
      return c.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
    }).join('  ').trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n');
}

/** "33.3%" for a fraction. */
export function percent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** Milliseconds with enough digits to tell loopback latencies apart: "0.084", "1.20", "12.3". */
export function millis(ms: number): string {
  if (ms < 1) return ms.toFixed(3);
  if (ms < 10) return ms.toFixed(2);
  return ms.toFixed(1);
}

/** A signed millisecond difference: "+0.041", "-0.003". */
export function signedMillis(ms: number): string {
  return `${ms < 0 ? '-' : '+'}${millis(Math.abs(ms))}`;
}

/** A whole-number rate with thousands grouped: "12,345". */
export function rate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US');
}

/** A p-value: "0.87", "0.003", "<1e-6". */
export function pValue(p: number | null): string {
  if (p === null) return '-';
  if (p < 1e-6) return '<1e-6';
  if (p < 0.01) return p.toPrecision(1);
  return p.toFixed(2);
}
