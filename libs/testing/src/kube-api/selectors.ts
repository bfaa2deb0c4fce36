/** labelSelector and fieldSelector parsing and matching (the common subset of kube's grammar). */
import { badRequest } from './status.js';

export type Requirement =
  | { key: string; op: 'exists' | 'notexists' }
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] };

export type Selector = (labels: Record<string, string> | undefined) => boolean;

/** Splits on commas outside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

export function parseLabelSelector(text: string | null | undefined): Requirement[] {
  if (!text) return [];
  const reqs: Requirement[] = [];
  for (const part of splitTop(text)) {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      const values = (m[3] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
      reqs.push({ key: m[1] as string, op: m[2] === 'in' ? 'in' : 'notin', values });
    } else if ((m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(part))) {
      reqs.push({ key: m[1] as string, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3] as string });
    } else if ((m = /^!\s*([^\s!=]+)$/.exec(part))) {
      reqs.push({ key: m[1] as string, op: 'notexists' });
    } else if ((m = /^([^\s!=]+)$/.exec(part))) {
      reqs.push({ key: m[1] as string, op: 'exists' });
    } else {
      throw badRequest(`unable to parse requirement: invalid label selector "${text}"`);
    }
  }
  return reqs;
}

export function matchesRequirements(reqs: readonly Requirement[], get: (key: string) => string | undefined): boolean {
  for (const r of reqs) {
    const v = get(r.key);
    switch (r.op) {
      case 'exists':
        if (v === undefined) return false;
        break;
      case 'notexists':
        if (v !== undefined) return false;
        break;
      case 'eq':
        if (v !== r.value) return false;
        break;
      case 'neq':
        if (v === r.value) return false;
        break;
      case 'in':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'notin':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
    }
  }
  return true;
}

/** fieldSelector: `path=value`, `path==value`, `path!=value`, comma separated; paths are dotted. */
export function parseFieldSelector(text: string | null | undefined): Requirement[] {
  if (!text) return [];
  const reqs: Requirement[] = [];
  for (const part of splitTop(text)) {
    const m = /^([A-Za-z0-9_.-]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    reqs.push({ key: m[1] as string, op: m[2] === '!=' ? 'neq' : 'eq', value: (m[3] ?? '').trim() });
  }
  return reqs;
}

/** The string value at a dotted path of an object (fieldSelector semantics: absent = ""). */
export function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : JSON.stringify(cur);
}
