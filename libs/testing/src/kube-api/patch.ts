/** PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge approximated. */
import { badRequest } from './status.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch without per-field merge keys: like a merge patch (lists replace),
 * with the directive keys ($patch, $retainKeys, $setElementOrder/..., $deleteFromPrimitiveList/...)
 * dropped. Enough for kubectl apply/edit/label/annotate on simple objects.
 */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (!isObject(v)) return v;
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) o[k] = strip(x);
    return o;
  };
  return mergePatch(target, strip(patch));
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add/remove/replace/test/copy/move. */
export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let root = structuredClone(doc) as unknown;
  const parentOf = (segs: string[]): [Record<string, unknown> | unknown[], string] => {
    let cur: unknown = root;
    for (const s of segs.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(s)] : isObject(cur) ? cur[s] : undefined;
      if (cur === undefined) throw badRequest(`the server rejected our request due to an error in our request: path ${segs.join('/')} not found`);
    }
    return [cur as Record<string, unknown> | unknown[], segs[segs.length - 1] as string];
  };
  const get = (segs: string[]): unknown => {
    let cur: unknown = root;
    for (const s of segs) cur = Array.isArray(cur) ? cur[Number(s)] : isObject(cur) ? cur[s] : undefined;
    return cur;
  };
  const remove = (segs: string[]): unknown => {
    const [p, k] = parentOf(segs);
    if (Array.isArray(p)) return p.splice(Number(k), 1)[0];
    const v = p[k];
    delete p[k];
    return v;
  };
  const add = (segs: string[], value: unknown) => {
    if (segs.length === 0) {
      root = value;
      return;
    }
    const [p, k] = parentOf(segs);
    if (Array.isArray(p)) p.splice(k === '-' ? p.length : Number(k), 0, value);
    else p[k] = value;
  };
  for (const raw of ops) {
    const op = raw as { op?: string; path?: string; from?: string; value?: unknown };
    const segs = pointer(op.path ?? '');
    switch (op.op) {
      case 'add':
        add(segs, structuredClone(op.value));
        break;
      case 'remove':
        remove(segs);
        break;
      case 'replace':
        if (segs.length > 0) remove(segs);
        add(segs, structuredClone(op.value));
        break;
      case 'test':
        if (JSON.stringify(get(segs)) !== JSON.stringify(op.value)) throw new Error('test operation failed');
        break;
      case 'copy':
        add(segs, structuredClone(get(pointer(op.from ?? ''))));
        break;
      case 'move':
        add(segs, remove(pointer(op.from ?? '')));
        break;
      default:
        throw badRequest(`unknown json patch operation "${String(op.op)}"`);
    }
  }
  return root;
}
