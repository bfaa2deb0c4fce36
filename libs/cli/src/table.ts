/** A session's length as recording lists show it: 42s, 3m7s, or running. */
export function sessionDuration(started: string, ended: string): string {
  if (!ended) return 'running';
  const s = Math.max(0, Math.round((new Date(ended).getTime() - new Date(started).getTime()) / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/**
 * The one text table of every Keyway command (kw, kwctl, benchmarks): a header, a line of
 * dashes, then rows, columns padded to their widest cell, as tsh and tctl print them.
 */
export function formatTable(header: string[], rows: string[][], o: { gap?: string } = {}): string {
  const gap = o.gap ?? '  ';
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => widths.map((w, i) => (r[i] ?? '').padEnd(w)).join(gap).trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join(gap), ...rows.map(line)].join('\n') + '\n';
}
