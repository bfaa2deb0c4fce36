/**
 * Request bodies in `application/vnd.kubernetes.protobuf`, which kubectl's typed clients send
 * (`kubectl create configmap|secret|namespace|serviceaccount`, `kubectl auth whoami|can-i`).
 * Envelope: the magic `k8s\0`, then runtime.Unknown { typeMeta(1){apiVersion(1), kind(2)},
 * raw(2), contentEncoding(3), contentType(4) }, raw being the object's own message. Only the
 * kinds below are decoded (their field numbers are the ones in k8s.io/api's generated.proto);
 * anything else is a 415 that tells the test to send YAML/JSON instead.
 */
import { StatusError, statusBody } from './status.js';
import type { KubeObject } from './store.js';

type Field = { no: number; wire: number; value: bigint | Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++] as number;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

export function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p] = readVarint(buf, pos);
    pos = p;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.push({ no, wire, value: v });
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      out.push({ no, wire, value: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 1) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const str = (f: Field) => (f.value as Buffer).toString('utf8');
const bytes = (f: Field) => f.value as Buffer;

function mapEntry(f: Field): [string, Buffer] {
  let key = '';
  let value: Buffer = Buffer.alloc(0);
  for (const e of fields(bytes(f))) {
    if (e.no === 1) key = str(e);
    if (e.no === 2) value = bytes(e);
  }
  return [key, value];
}

function objectMeta(buf: Buffer): KubeObject['metadata'] {
  const meta: KubeObject['metadata'] = {};
  for (const f of fields(buf)) {
    // proto2 as Go writes it: unset strings go out as empty ones.
    if (f.wire === 2 && bytes(f).length === 0) continue;
    if (f.no === 1) meta.name = str(f);
    else if (f.no === 2) meta.generateName = str(f);
    else if (f.no === 3) meta.namespace = str(f);
    else if (f.no === 6) meta.resourceVersion = str(f);
    else if (f.no === 11) {
      const [k, v] = mapEntry(f);
      (meta.labels ??= {})[k] = v.toString('utf8');
    } else if (f.no === 12) {
      const [k, v] = mapEntry(f);
      (meta.annotations ??= {})[k] = v.toString('utf8');
    }
  }
  return meta;
}

type Decoder = (raw: Buffer) => Record<string, unknown>;

const withMeta =
  (rest: (obj: Record<string, unknown>, f: Field) => void): Decoder =>
  (raw) => {
    const obj: Record<string, unknown> = { metadata: {} };
    for (const f of fields(raw)) {
      if (f.no === 1 && f.wire === 2) obj['metadata'] = objectMeta(bytes(f));
      else rest(obj, f);
    }
    return obj;
  };

const DECODERS: Record<string, Decoder> = {
  ConfigMap: withMeta((obj, f) => {
    if (f.no === 2) {
      const [k, v] = mapEntry(f);
      ((obj['data'] ??= {}) as Record<string, string>)[k] = v.toString('utf8');
    } else if (f.no === 3) {
      const [k, v] = mapEntry(f);
      ((obj['binaryData'] ??= {}) as Record<string, string>)[k] = v.toString('base64');
    } else if (f.no === 4) obj['immutable'] = f.value !== 0n;
  }),
  Secret: withMeta((obj, f) => {
    if (f.no === 2) {
      const [k, v] = mapEntry(f);
      ((obj['data'] ??= {}) as Record<string, string>)[k] = v.toString('base64');
    } else if (f.no === 3) obj['type'] = str(f);
    else if (f.no === 4) {
      const [k, v] = mapEntry(f);
      ((obj['stringData'] ??= {}) as Record<string, string>)[k] = v.toString('utf8');
    } else if (f.no === 5) obj['immutable'] = f.value !== 0n;
  }),
  Namespace: withMeta(() => undefined),
  ServiceAccount: withMeta(() => undefined),
  SelfSubjectReview: withMeta(() => undefined),
  SelfSubjectAccessReview: withMeta((obj, f) => {
    if (f.no !== 2) return;
    const spec: Record<string, unknown> = {};
    for (const s of fields(bytes(f))) {
      const names = s.no === 1 ? ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'] : s.no === 2 ? ['path', 'verb'] : [];
      const attrs: Record<string, string> = {};
      for (const a of fields(bytes(s))) {
        const n = names[a.no - 1];
        if (n && a.wire === 2) attrs[n] = str(a);
      }
      if (s.no === 1) spec['resourceAttributes'] = attrs;
      if (s.no === 2) spec['nonResourceAttributes'] = attrs;
    }
    obj['spec'] = spec;
  }),
};

const MAGIC = Buffer.from('k8s\0', 'latin1');

export function isKubeProtobuf(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim() === 'application/vnd.kubernetes.protobuf';
}

/** Decodes a protobuf request body into the JSON shape of the object. */
export function decodeKubeProtobuf(body: Buffer): KubeObject {
  const unsupported = (why: string) =>
    new StatusError(statusBody(415, 'UnsupportedMediaType', `the test API server cannot decode this protobuf body (${why}); send application/json or application/yaml (e.g. kubectl create -f)`));
  if (!body.subarray(0, 4).equals(MAGIC)) throw unsupported('missing k8s magic');
  let apiVersion = '';
  let kind = '';
  let raw: Buffer = Buffer.alloc(0);
  try {
    for (const f of fields(body.subarray(4))) {
      if (f.no === 1) {
        for (const t of fields(bytes(f))) {
          if (t.no === 1) apiVersion = str(t);
          if (t.no === 2) kind = str(t);
        }
      } else if (f.no === 2) raw = bytes(f);
      else if (f.no === 3 && bytes(f).length > 0) throw unsupported(`content encoding ${str(f)}`);
    }
    const decode = DECODERS[kind];
    if (!decode) throw unsupported(`kind ${kind || '<none>'}`);
    return { apiVersion, kind, ...(decode(raw) as Omit<KubeObject, 'apiVersion' | 'kind'>) } as KubeObject;
  } catch (err) {
    if (err instanceof StatusError) throw err;
    throw unsupported((err as Error).message);
  }
}
