#!/bin/sh
# The kubeconfig a Keyway kube agent (or proxy) outside the cluster uses, with kubectl only:
# a ServiceAccount that may do nothing but impersonate, a long-lived token for it, and a
# kubeconfig around them. `keyway-kube-agent configure` does the same; the ClusterRole's rules
# are libs/agent/src/configure-rbac.ts's (a test keeps them equal). Re-running updates the
# objects and never makes second ones.
#
#   make-kubeconfig.sh --kubeconfig=ADMIN [--context=CTX] --out=FILE [--namespace=keyway]
#                      [--service-account=keyway-kube-agent] [--cluster-name=NAME]
#                      [--token-timeout=60] [--force]
set -eu

admin='' context='' out='' ns=keyway sa=keyway-kube-agent cluster_name='' timeout=60 force=''
die() { echo "make-kubeconfig.sh: $*" >&2; exit 1; }
for arg in "$@"; do
  case $arg in
    --kubeconfig=*) admin=${arg#*=} ;;
    --context=*) context=${arg#*=} ;;
    --out=*) out=${arg#*=} ;;
    --namespace=*) ns=${arg#*=} ;;
    --service-account=*) sa=${arg#*=} ;;
    --cluster-name=*) cluster_name=${arg#*=} ;;
    --token-timeout=*) timeout=${arg#*=} ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument \"$arg\" (see --help; flags are --name=value)" ;;
  esac
done
[ -n "$admin" ] || die "--kubeconfig=FILE (an admin kubeconfig) is required"
[ -n "$out" ] || die "--out=FILE (where to write the agent kubeconfig) is required"
[ -r "$admin" ] || die "--kubeconfig $admin cannot be read"
if [ -e "$out" ] && [ -z "$force" ]; then die "--out $out exists: pass --force to overwrite it"; fi
case $timeout in ''|*[!0-9]*) die "--token-timeout \"$timeout\" is not a whole number of seconds" ;; esac
command -v kubectl >/dev/null || die "kubectl is not on PATH"

if [ -z "$context" ]; then
  context=$(kubectl --kubeconfig="$admin" config current-context 2>/dev/null) || die "kubeconfig $admin has no current-context: pass --context"
fi
kubectl --kubeconfig="$admin" config get-contexts -o name 2>/dev/null | grep -qx -- "$context" ||
  die "kubeconfig $admin has no context \"$context\" (it has $(kubectl --kubeconfig="$admin" config get-contexts -o name 2>/dev/null | tr '\n' ' '))"
k() { kubectl --kubeconfig="$admin" --context="$context" "$@"; }
server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
k get --raw /version >/dev/null 2>"${TMPDIR:-/tmp}/make-kubeconfig.$$" || {
  reason=$(tail -1 "${TMPDIR:-/tmp}/make-kubeconfig.$$"); rm -f "${TMPDIR:-/tmp}/make-kubeconfig.$$"
  die "cannot reach the API server $server (context $context): $reason"
}
rm -f "${TMPDIR:-/tmp}/make-kubeconfig.$$"

role=$sa-impersonation
secret=$sa-token
# apply's own lines ("serviceaccount/... created|configured|unchanged") say what was made.
apply() { k apply -f - || die "could not apply the objects above with context $context (it needs to create Namespaces, ServiceAccounts, Secrets and RBAC: use a cluster-admin context)"; }
if k get namespace "$ns" >/dev/null 2>&1; then echo "namespace/$ns unchanged"; else k create namespace "$ns" || die "could not create namespace $ns with context $context"; fi
# The binding's roleRef cannot change; someone else's binding of this name is not rebound.
bound=$(k get clusterrolebinding "$role" -o jsonpath='{.roleRef.name} {range .subjects[*]}{.kind}/{.namespace}/{.name} {end}' 2>/dev/null || true)
if [ -n "$bound" ] && [ "$bound" != "$role ServiceAccount/$ns/$sa " ]; then
  die "ClusterRoleBinding $role already exists and binds $bound: delete it or choose another --service-account"
fi
apply <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: $sa, namespace: $ns}
---
# BEGIN RULES (libs/agent/src/configure-rbac.ts)
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $role}
rules:
  - apiGroups: [""]
    resources: [users, groups, serviceaccounts]
    verbs: [impersonate]
# END RULES
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $role}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $role}
subjects: [{kind: ServiceAccount, name: $sa, namespace: $ns}]
---
# Since v1.24 no token Secret is made for a ServiceAccount; one asked for this way is filled by
# the token controller on every version.
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: $secret
  namespace: $ns
  annotations: {kubernetes.io/service-account.name: $sa}
YAML

waited=0
token=$(k -n "$ns" get secret "$secret" -o jsonpath='{.data.token}')
while [ -z "$token" ]; do
  [ "$waited" -lt "$timeout" ] ||
    die "timed out after $timeout s waiting for the token controller (kube-controller-manager) to put a token for ServiceAccount $ns/$sa into Secret $ns/$secret: is kube-controller-manager running with --service-account-private-key-file?"
  sleep 1; waited=$((waited + 1))
  token=$(k -n "$ns" get secret "$secret" -o jsonpath='{.data.token}')
done
token=$(printf %s "$token" | base64 -d)

# The admin kubeconfig's CA for this server (it is what reaches the server at this address),
# else the cluster's root CA from the token Secret.
ca=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
if [ -z "$ca" ]; then
  ca_file=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  if [ -n "$ca_file" ]; then ca=$(base64 < "$ca_file" | tr -d '\n'); else ca=$(k -n "$ns" get secret "$secret" -o jsonpath='{.data.ca\.crt}'); fi
fi
tls_server_name=$(k config view --minify -o jsonpath='{.clusters[0].cluster.tls-server-name}')
name=${cluster_name:-$context}

# Written whole and moved into place; it holds a token, so only its owner may read it.
tmp=$out.tmp-$$
umask 077
: > "$tmp"
kubectl --kubeconfig="$tmp" config set-cluster "$name" --server="$server" >/dev/null
kubectl --kubeconfig="$tmp" config set "clusters.$name.certificate-authority-data" "$ca" >/dev/null
[ -z "$tls_server_name" ] || kubectl --kubeconfig="$tmp" config set-cluster "$name" --tls-server-name="$tls_server_name" >/dev/null
kubectl --kubeconfig="$tmp" config set-credentials "$sa" --token="$token" >/dev/null
kubectl --kubeconfig="$tmp" config set-context "$name" --cluster="$name" --user="$sa" --namespace="$ns" >/dev/null
kubectl --kubeconfig="$tmp" config use-context "$name" >/dev/null
mv -f "$tmp" "$out"
echo "wrote $out (context $name, user system:serviceaccount:$ns:$sa, server $server)"
echo "run the agent with: keyway-kube-agent --kubeconfig=$out --proxy=<host:port> --token=<join token>"
