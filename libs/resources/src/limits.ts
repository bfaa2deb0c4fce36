import { BadParameterError } from '@keyway/errors';

/**
 * Bounds on what a resource may be, checked when it is written (and, for text, before it is
 * parsed), so that whatever the store holds always fits one watch message (the gRPC limit,
 * GRPC_MAX_MESSAGE_BYTES in @keyway/client, is 16 MiB) with room to spare. A resource that
 * broke the change feed would leave every proxy reconnecting in a loop, blind to new locks.
 */
export const RESOURCE_LIMITS = {
  /** A resource's serialized (JSON) size. Teleport's backends hold about as much (etcd: 1.5 MiB). */
  maxResourceBytes: 1024 * 1024,
  /** Nesting of mappings and lists; Teleport's deepest resources nest about ten levels. */
  maxDepth: 64,
  /** Mappings, lists and scalars in one document (after YAML aliases are expanded). */
  maxNodes: 100_000,
  /** Labels on one resource or one served cluster. */
  maxLabels: 128,
  /** A label key, in UTF-8 bytes (Kubernetes: 253 for the prefix, 63 for the name). */
  maxLabelKeyBytes: 256,
  /** A label value, in UTF-8 bytes. */
  maxLabelValueBytes: 1024,
} as const;

/** Text handed to the YAML/JSON parser at most: a file of many documents, as kwctl reads. */
export const MAX_DOCUMENTS_TEXT_BYTES = 16 * 1024 * 1024;

/**
 * An upper bound of the nesting in YAML or JSON text, computed without parsing: flow brackets
 * outside quotes, plus block indentation levels and `- ` sequence entries. It over-counts
 * rather than under-counts, so that a document the parser would recurse into too deeply is
 * refused before the parser sees it.
 */
export function textNestingDepth(text: string): number {
  let max = 0;
  let flow = 0;
  const indents: number[] = [];
  let quote: '"' | "'" | undefined;
  // Lines of a block scalar (`key: |`) are text, not structure: skipped while more indented.
  let scalarParent: number | undefined;
  for (const line of text.split('\n')) {
    let i = 0;
    let blockDepth = indents.length;
    if (flow === 0 && quote === undefined) {
      while (i < line.length && line[i] === ' ') i++;
      if (scalarParent !== undefined) {
        if (i === line.length || i > scalarParent) continue;
        scalarParent = undefined;
      }
      if (BLOCK_SCALAR.test(line)) scalarParent = i;
      if (i < line.length && line[i] !== '#') {
        while (indents.length > 0 && (indents[indents.length - 1] as number) >= i) indents.pop();
        indents.push(i);
        // "- - - a": each dash opens one more level on the same line.
        let j = i;
        while (line[j] === '-' && (line[j + 1] === ' ' || j + 1 === line.length)) {
          j += 2;
          while (line[j] === ' ') j++;
          indents.push(j);
        }
        i = j;
      }
      blockDepth = indents.length;
    }
    for (; i < line.length; i++) {
      const c = line[i];
      if (quote !== undefined) {
        if (c === '\\' && quote === '"') i++;
        else if (c === quote) quote = undefined;
        continue;
      }
      if (c === '"' || c === "'") quote = c;
      else if (c === '#' && (i === 0 || line[i - 1] === ' ')) break;
      else if (c === '[' || c === '{') {
        flow++;
        max = Math.max(max, blockDepth + flow);
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
    }
    // A single quote does not span lines in a plain context often enough to matter; a double
    // quote may, and is carried over.
    if (quote === "'") quote = undefined;
    max = Math.max(max, blockDepth);
  }
  return max;
}

const BLOCK_SCALAR = /(^|[:\-]\s)\s*[|>][-+0-9]*\s*(#.*)?$/;

/** Refuses text too large or too deeply nested to hand to the parser. */
export function checkDocumentText(text: string, source: string, maxBytes: number = MAX_DOCUMENTS_TEXT_BYTES): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new BadParameterError(`${source}: ${bytes} bytes is more than the limit of ${maxBytes} bytes`, { source, bytes, limit: maxBytes });
  }
  const depth = textNestingDepth(text);
  if (depth > RESOURCE_LIMITS.maxDepth) {
    throw new BadParameterError(`${source}: nested more than ${RESOURCE_LIMITS.maxDepth} levels deep`, { source, limit: RESOURCE_LIMITS.maxDepth });
  }
}

/**
 * The problem with a decoded value's shape (nesting, node count), or undefined. Iterative,
 * so a value of any depth is measured without recursion.
 */
export function shapeProblem(value: unknown): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  let nodes = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (++nodes > RESOURCE_LIMITS.maxNodes) return `has more than ${RESOURCE_LIMITS.maxNodes} values`;
    // Postgres stores no NUL in text or JSON: refused here rather than failing in the store.
    if (typeof v === 'string' && v.includes('\u0000')) return 'contains a NUL character';
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v) && Object.keys(v).some((k) => k.includes('\u0000'))) return 'contains a NUL character';
    if (depth > RESOURCE_LIMITS.maxDepth) return `is nested more than ${RESOURCE_LIMITS.maxDepth} levels deep`;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** Problems with a set of labels, each with the field it names (`metadata.labels`, …). */
export function labelProblems(labels: Record<string, unknown> | undefined, field: string): { path: string; message: string }[] {
  if (labels === undefined || labels === null || typeof labels !== 'object') return [];
  const out: { path: string; message: string }[] = [];
  const entries = Object.entries(labels);
  if (entries.length > RESOURCE_LIMITS.maxLabels) {
    out.push({ path: field, message: `has ${entries.length} labels, more than the limit of ${RESOURCE_LIMITS.maxLabels}` });
  }
  for (const [key, value] of entries.slice(0, RESOURCE_LIMITS.maxLabels + 1)) {
    const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
    if (Buffer.byteLength(key, 'utf8') > RESOURCE_LIMITS.maxLabelKeyBytes) {
      out.push({ path: field, message: `label key "${shown}" is longer than the limit of ${RESOURCE_LIMITS.maxLabelKeyBytes} bytes` });
    }
    if (typeof value === 'string' && Buffer.byteLength(value, 'utf8') > RESOURCE_LIMITS.maxLabelValueBytes) {
      out.push({ path: `${field}.${shown}`, message: `label value is longer than the limit of ${RESOURCE_LIMITS.maxLabelValueBytes} bytes` });
    }
  }
  return out;
}

/** Throws BadParameter naming the field when labels break a bound (heartbeats, tokens). */
export function checkLabels(labels: Record<string, unknown> | undefined, field: string): void {
  const [first] = labelProblems(labels, field);
  if (first) throw new BadParameterError(`${first.path}: ${first.message}`, { field: first.path, limits: RESOURCE_LIMITS });
}

/** Throws BadParameter when a value's JSON is larger than `limit` bytes. */
export function checkSerializedSize(value: unknown, field: string, limit: number = RESOURCE_LIMITS.maxResourceBytes): void {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  if (bytes > limit) throw new BadParameterError(`${field} is ${bytes} bytes, more than the limit of ${limit} bytes`, { field, bytes, limit });
}
