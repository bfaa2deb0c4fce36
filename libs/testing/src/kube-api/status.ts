/** metav1.Status bodies and the errors that carry them, worded as kube-apiserver words them. */

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ type?: string; message?: string; field?: string }> };
  code: number;
}

export function statusBody(code: number, reason: string, message: string, details?: KubeStatus['details']): KubeStatus {
  const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', message, reason, code };
  if (details) s.details = details;
  return s;
}

/** An error that becomes a Status response. */
export class StatusError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
  get code(): number {
    return this.status.code;
  }
}

function details(resource: string, group: string, name?: string): KubeStatus['details'] {
  const d: NonNullable<KubeStatus['details']> = { kind: resource };
  if (name !== undefined) d.name = name;
  if (group) d.group = group;
  return d;
}

const qualified = (resource: string, group: string) => (group ? `${resource}.${group}` : resource);

export function notFound(resource: string, group: string, name: string): StatusError {
  return new StatusError(statusBody(404, 'NotFound', `${qualified(resource, group)} "${name}" not found`, details(resource, group, name)));
}

export function alreadyExists(resource: string, group: string, name: string): StatusError {
  return new StatusError(statusBody(409, 'AlreadyExists', `${qualified(resource, group)} "${name}" already exists`, details(resource, group, name)));
}

export function conflict(resource: string, group: string, name: string): StatusError {
  return new StatusError(
    statusBody(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      details(resource, group, name),
    ),
  );
}

export function badRequest(message: string): StatusError {
  return new StatusError(statusBody(400, 'BadRequest', message));
}

export function invalid(resource: string, group: string, name: string, field: string, message: string): StatusError {
  return new StatusError(
    statusBody(422, 'Invalid', `${qualified(resource, group)} "${name}" is invalid: ${field}: ${message}`, {
      ...details(resource, group, name),
      causes: [{ type: 'FieldValueInvalid', message, field }],
    }),
  );
}

export function methodNotAllowed(): StatusError {
  return new StatusError(statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
}

export function notFoundPath(): StatusError {
  return new StatusError(statusBody(404, 'NotFound', 'the server could not find the requested resource', {}));
}

export function gone(message: string): StatusError {
  return new StatusError(statusBody(410, 'Expired', message));
}

export function unauthorized(): StatusError {
  return new StatusError(statusBody(401, 'Unauthorized', 'Unauthorized'));
}

export function internalError(message: string): StatusError {
  return new StatusError(statusBody(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }));
}

export interface ForbiddenAttributes {
  user: string;
  verb: string;
  resource?: string;
  subresource?: string;
  group?: string;
  namespace?: string;
  name?: string;
  path?: string;
}

/**
 * kube-apiserver's RBAC denial, e.g.
 * `pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "default"`.
 */
export function forbidden(a: ForbiddenAttributes, reason = ''): StatusError {
  const suffix = reason ? `: ${reason}` : '';
  if (a.resource === undefined) {
    return new StatusError(
      statusBody(403, 'Forbidden', `forbidden: User "${a.user}" cannot ${a.verb.toLowerCase()} path "${a.path ?? '/'}"${suffix}`, {}),
    );
  }
  const group = a.group ?? '';
  const resourceText = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const subject = a.name ? `${qualified(a.resource, group)} "${a.name}"` : qualified(a.resource, group);
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const message = `${subject} is forbidden: User "${a.user}" cannot ${a.verb} resource "${resourceText}" in API group "${group}" ${scope}${suffix}`;
  return new StatusError(statusBody(403, 'Forbidden', message, details(a.resource, group, a.name)));
}
