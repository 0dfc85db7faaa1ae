/** The first line where two texts differ, both sides shown under their labels: evidence for a failure message. */
export function firstDifference(got: string, want: string, labels: readonly [string, string] = ['got', 'want']): string {
  const a = got.split('\n');
  const b = want.split('\n');
  const i = a.findIndex((line, k) => line !== b[k]);
  const at = i < 0 ? Math.min(a.length, b.length) : i;
  const width = Math.max(labels[0].length, labels[1].length) + 1;
  return `line ${at + 1}:\n  ${`${labels[0]}:`.padEnd(width)} ${a[at] ?? '(end)'}\n  ${`${labels[1]}:`.padEnd(width)} ${b[at] ?? '(end)'}`;
}
