/**
 * Durations as nft writes them (time_print): days, hours, minutes, seconds and milliseconds,
 * each only when not zero ("3h", "1m30s", "2h59m58s980ms"), and read back from that form or
 * from plain seconds ("10800s", "10800").
 */

export function durationText(seconds: number): string {
  let rest = Math.round(seconds * 1000);
  const units: readonly [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]];
  let out = '';
  for (const [unit, ms] of units) {
    const n = Math.floor(rest / ms);
    rest -= n * ms;
    if (n > 0) out += `${n}${unit}`;
  }
  return out === '' ? '0s' : out;
}

/** "3h", "1m30s", "980ms", "10800s" or "10800" → seconds; undefined when not that form. */
export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+)(ms|d|h|m|s)/gy;
  const factor: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * factor[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}
