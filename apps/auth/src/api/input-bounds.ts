import { BadParameterError } from '@keyway/errors';
import { MAX_NAME_LENGTH, RESOURCE_LIMITS, checkLabels, checkSerializedSize } from '@keyway/resources';
import { STORED_KINDS } from '@keyway/store';

/** Resources in one CreateResources call (kwctl sends one file's documents). */
export const MAX_RESOURCES_PER_CALL = 1000;
/** Clusters one agent serves, as announced in one heartbeat. */
export const MAX_HEARTBEAT_CLUSTERS = 1000;
/** hostname, addr and version of a heartbeat, in UTF-8 bytes. */
export const MAX_HEARTBEAT_FIELD_BYTES = 1024;

/**
 * The caller must be allowed to create (and with --force, update) the declared kinds before a
 * byte of the documents is parsed; an input that declares no kind needs the right to create
 * some kind. The kind each document really has is authorized again once it is parsed.
 */
export async function authorizeCreateBeforeParse(
  inputs: readonly { kind: string }[],
  force: boolean,
  authorize: (kind: string, verb: string) => Promise<void>,
): Promise<void> {
  const declared = new Set(inputs.map((i) => i.kind));
  const verbs = force ? ['create', 'update'] : ['create'];
  if (declared.has('')) {
    let refusal: unknown;
    let allowed = false;
    for (const kind of STORED_KINDS) {
      try {
        for (const verb of verbs) await authorize(kind, verb);
        allowed = true;
        break;
      } catch (err) {
        refusal = err;
      }
    }
    if (!allowed) throw refusal;
    declared.delete('');
  }
  for (const kind of declared) {
    if (!(STORED_KINDS as readonly string[]).includes(kind)) {
      // Authorized as any kind would be first, so that an unknown caller learns nothing.
      await authorize(kind, 'create');
      throw new BadParameterError(`unknown resource kind ${JSON.stringify(kind.slice(0, 64))} (expected one of ${STORED_KINDS.join(', ')})`, { kind: kind.slice(0, 64) });
    }
    for (const verb of verbs) await authorize(kind, verb);
  }
  if (inputs.length > MAX_RESOURCES_PER_CALL) {
    throw new BadParameterError(`${inputs.length} resources in one call is more than the limit of ${MAX_RESOURCES_PER_CALL}`, { limit: MAX_RESOURCES_PER_CALL });
  }
}

/**
 * A heartbeat becomes a presence record that every proxy's watch carries, so it is bounded as
 * a resource is: field sizes, cluster count, label count and sizes, and its whole JSON.
 */
export function checkHeartbeat(input: { hostId: string; hostname: string; addr: string; version: string; kubeClusters: { name: string; labels: Record<string, string> }[] }): void {
  for (const field of ['hostId', 'hostname', 'addr', 'version'] as const) {
    const bytes = Buffer.byteLength(input[field], 'utf8');
    if (bytes > MAX_HEARTBEAT_FIELD_BYTES) {
      throw new BadParameterError(`heartbeat ${field} is ${bytes} bytes, more than the limit of ${MAX_HEARTBEAT_FIELD_BYTES} bytes`, { field, limit: MAX_HEARTBEAT_FIELD_BYTES });
    }
  }
  if (input.kubeClusters.length > MAX_HEARTBEAT_CLUSTERS) {
    throw new BadParameterError(`heartbeat serves ${input.kubeClusters.length} clusters, more than the limit of ${MAX_HEARTBEAT_CLUSTERS}`, { field: 'kube_clusters', limit: MAX_HEARTBEAT_CLUSTERS });
  }
  input.kubeClusters.forEach((k, i) => {
    if (k.name === '' || k.name.length > MAX_NAME_LENGTH) {
      throw new BadParameterError(`heartbeat kube_clusters[${i}].name must be 1 to ${MAX_NAME_LENGTH} characters`, { field: `kube_clusters[${i}].name`, limit: MAX_NAME_LENGTH });
    }
    checkLabels(k.labels, `kube_clusters[${i}].labels`);
  });
  checkSerializedSize(input, 'heartbeat', RESOURCE_LIMITS.maxResourceBytes);
}
