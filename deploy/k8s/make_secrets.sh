#!/usr/bin/env bash
# Makes the Secrets the manifests mount, once per cluster (docs/OPERATIONS.md
# "Secrets"): nothing secret is in the repository.
#
#   deploy/k8s/make_secrets.sh OUT_DIR [NAME:SCOPES ...]     > secrets.yaml
#   kubectl apply -f secrets.yaml
#
# OUT_DIR (created, mode 700) keeps what clients need and what the cluster
# does not: each client's API key (OUT_DIR/keys/NAME), the CA certificate
# (OUT_DIR/tls/ca.crt) and the CA's key (to sign a new server certificate).
# Default clients: web (recommend), pos (record), ops (recommend,inspect),
# submission (recommend; the submission Job's key).
#
# Secrets written to stdout (namespace hmrec):
#   hmrec-api-keys      api_keys: the server's keys file (NAME SCOPES sha256:HEX)
#   hmrec-tls           tls.crt, tls.key, ca.crt: the server's certificate for its
#                       Services' names, signed by a CA made here (a cert-manager
#                       Certificate writing the same keys can replace it)
#   hmrec-redis         password (the server's events.redis_password_file) and
#                       auth.conf (requirepass, included by redis-server)
#   hmrec-key-submission  key: the submission Job's API key
set -euo pipefail
OUT=${1:?usage: make_secrets.sh OUT_DIR [NAME:SCOPES ...]}
shift
CLIENTS=("$@")
if [[ ${#CLIENTS[@]} -eq 0 ]]; then
  CLIENTS=(web:recommend pos:record ops:recommend,inspect submission:recommend)
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NS=hmrec
umask 077
mkdir -p "$OUT/keys" "$OUT/tls"
[[ ! -e "$OUT/api_keys" ]] || { echo "make_secrets.sh: $OUT already holds secrets; use a new directory" >&2; exit 1; }

for c in "${CLIENTS[@]}"; do
  bash "$ROOT/scripts/make_api_key.sh" "${c%%:*}" "${c#*:}" "$OUT/keys/${c%%:*}" "$OUT/api_keys" 2> /dev/null \
    || { echo "make_secrets.sh: bad client '$c' (NAME:SCOPES)" >&2; exit 1; }
done

# The server's certificate: every name clients use for it.
names="DNS:hmrec-server,DNS:hmrec-server.$NS.svc,DNS:hmrec-server.$NS.svc.cluster.local"
names="$names,DNS:hmrec-server-headless.$NS.svc,DNS:hmrec-server-headless.$NS.svc.cluster.local,DNS:localhost"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$OUT/tls/ca.key" 2> /dev/null
openssl req -x509 -new -key "$OUT/tls/ca.key" -out "$OUT/tls/ca.crt" -days 825 -subj "/CN=hmrec CA" 2> /dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$OUT/tls/tls.key" 2> /dev/null
openssl req -new -key "$OUT/tls/tls.key" -out "$OUT/tls/tls.csr" -subj "/CN=hmrec-server" 2> /dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$names" > "$OUT/tls/ext"
openssl x509 -req -in "$OUT/tls/tls.csr" -CA "$OUT/tls/ca.crt" -CAkey "$OUT/tls/ca.key" -CAcreateserial \
  -out "$OUT/tls/tls.crt" -days 397 -extfile "$OUT/tls/ext" 2> /dev/null

head -c 32 /dev/urandom | base64 | tr -d '=\n' | tr '+/' '-_' > "$OUT/redis_password"
printf 'requirepass %s\n' "$(cat "$OUT/redis_password")" > "$OUT/redis_auth.conf"

b64() { base64 -w0 < "$1"; }
secret() {  # secret NAME KEY=FILE...
  local name=$1
  shift
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$NS"
  printf '  labels:\n    app.kubernetes.io/part-of: hmrec\ntype: Opaque\ndata:\n'
  for kv in "$@"; do printf '  %s: %s\n' "${kv%%=*}" "$(b64 "${kv#*=}")"; done
}
secret hmrec-api-keys "api_keys=$OUT/api_keys"
secret hmrec-tls "tls.crt=$OUT/tls/tls.crt" "tls.key=$OUT/tls/tls.key" "ca.crt=$OUT/tls/ca.crt"
secret hmrec-redis "password=$OUT/redis_password" "auth.conf=$OUT/redis_auth.conf"
if [[ -f "$OUT/keys/submission" ]]; then secret hmrec-key-submission "key=$OUT/keys/submission"; fi
echo "make_secrets.sh: Secrets on stdout; client keys in $OUT/keys, the CA in $OUT/tls (keep $OUT safe)" >&2
