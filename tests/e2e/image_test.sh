#!/usr/bin/env bash
# The container image is built from the working tree and its server answers:
#   1. base images without a registry: debootstrap --variant=minbase bookworm
#      (cached in $HMREC_IMAGE_CACHE, default /var/cache/hmrec-image), imported
#      with podman and tagged as the Dockerfile's FROM names;
#   2. podman build --pull=never --isolation chroot of deploy/docker/Dockerfile
#      from the tracked and untracked-but-not-ignored files of the tree;
#   3. the image's files exported (podman create + export) and run with chroot
#      as uid 10001, the way the Deployment runs them: its init container's
#      script copies a tiny bundle from /bundles to /bundle, then the
#      entrypoint serves it with the manifests' config at /etc/hmrec/config
#      and the Secrets of deploy/k8s/make_secrets.sh at their mounts (API
#      keys, TLS); a Python grpcio client with a key gets health SERVING and a
#      Recommend answer over TLS (none without the key), /metrics and the
#      HTTPS API answer, SIGTERM drains and exits 0;
#   4. the image holds no compiler, build tool or header, runs as 10001, and
#      its size is printed (docs/OPERATIONS.md).
# `podman run` cannot work on this machine (crun: setrlimit not permitted),
# hence export + chroot. Skipped (exit 77) only when podman cannot build at all.
#
#   tests/e2e/image_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
WORK=$(mktemp -d)
ROOT="$WORK/rootfs"
PIDS=()
CID=""
IMAGE=localhost/hmrec:e2e
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  for m in proc sys dev; do
    if mountpoint -q "$ROOT/$m" 2> /dev/null; then umount -l "$ROOT/$m" || true; fi
  done
  [[ -n "$CID" ]] && podman rm -f "$CID" > /dev/null 2>&1 || true
  # The build stage's layers are GBs: keep no dangling images (the ccache
  # cache mount and the base images stay, so the next build is quick).
  podman rmi -f "$IMAGE" > /dev/null 2>&1 || true
  podman image prune -f > /dev/null 2>&1 || true
  # Never delete through a mount that is still there.
  if ! grep -q " $WORK/" /proc/mounts; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
skip() { echo "SKIP: $*"; exit 77; }
command -v podman > /dev/null || skip "podman is not installed (deploy/install_deps.sh installs it)"
[[ $(id -u) -eq 0 ]] || skip "needs root: podman build --isolation chroot, chroot and mounts"

# 1. Base images.
CACHE=${HMREC_IMAGE_CACHE:-/var/cache/hmrec-image}
BASE="$CACHE/debian-bookworm-minbase.tar"
if [[ ! -s "$BASE" ]]; then
  mkdir -p "$CACHE"
  echo "image: debootstrap --variant=minbase bookworm (cached in $CACHE)"
  debootstrap --variant=minbase bookworm "$WORK/base" http://deb.debian.org/debian > "$WORK/debootstrap.log" 2>&1 \
    || { tail -5 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
  tar -C "$WORK/base" -c . > "$BASE.partial" && mv "$BASE.partial" "$BASE"
  rm -rf "$WORK/base"
fi
if ! podman image exists docker.io/library/debian:bookworm; then
  podman import "$BASE" localhost/debian-minbase:bookworm > /dev/null || fail "podman import"
  podman tag localhost/debian-minbase:bookworm docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
fi
printf 'FROM debian:bookworm\nRUN true\n' > "$WORK/Probe.Dockerfile"
podman build --pull=never --isolation chroot -q -f "$WORK/Probe.Dockerfile" "$WORK" > /dev/null 2>&1 \
  || skip "podman cannot build images on this machine"

# 2. Build from the working tree (what git would ship: tracked files, and new
# files it does not ignore; no build/ or out/).
mkdir -p "$WORK/context"
(cd "$SRC" && git ls-files -z -co --exclude-standard | xargs -0 -I{} sh -c 'test -f "{}" && echo "{}"' \
  | tar -c -T - | tar -x -C "$WORK/context")
start=$(date +%s)
podman build --pull=never --isolation chroot --layers -f deploy/docker/Dockerfile -t "$IMAGE" "$WORK/context" \
  > "$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; fail "podman build failed"; }
echo "image: built $IMAGE in $(($(date +%s) - start)) s"
SIZE=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "image: size $((SIZE / 1024 / 1024)) MiB ($SIZE bytes)"
USER_=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
[[ "$USER_" == "10001:10001" ]] || fail "the image runs as '$USER_', not 10001:10001"
ENTRY=$(podman image inspect "$IMAGE" --format '{{json .Config.Entrypoint}}')
[[ "$ENTRY" == '["/opt/hmrec/bin/hmrec_server","--config"]' ]] || fail "entrypoint $ENTRY"
mapfile -t ENVS < <(podman image inspect "$IMAGE" --format '{{range .Config.Env}}{{println .}}{{end}}' | grep .)

# 3. Its files, run as a pod would run them.
CID=$(podman create "$IMAGE")
mkdir -p "$ROOT"
podman export "$CID" | tar -x -C "$ROOT"
for tool in usr/bin/gcc usr/bin/g++ usr/bin/cc usr/bin/c++ usr/bin/cmake usr/bin/ninja usr/bin/make usr/bin/ld; do
  [[ ! -e "$ROOT/$tool" ]] || fail "the image holds a build tool: /$tool"
done
if [[ -d "$ROOT/usr/include" ]] && [[ -n $(find "$ROOT/usr/include" -name '*.h*' -print -quit) ]]; then
  fail "the image holds headers: $(find "$ROOT/usr/include" -name '*.h*' | head -3)"
fi
# What a pod has: /proc, /sys, a few device nodes, the ConfigMap, the volumes.
mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/etc/hmrec/config" "$ROOT/bundles" "$ROOT/bundle"
mount -t proc proc "$ROOT/proc"
mount -t sysfs -o ro sysfs "$ROOT/sys"
mount -t tmpfs -o size=1m tmpfs "$ROOT/dev"
for n in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
  IFS=: read -r name major minor <<< "$n"
  mknod -m 666 "$ROOT/dev/$name" c "$major" "$minor"
done
cp "$SRC/deploy/k8s/server.pbtxt" "$ROOT/etc/hmrec/config/server.pbtxt"
# The Secrets, mounted as the Deployment mounts them (0440, group 10001).
bash "$SRC/deploy/k8s/make_secrets.sh" "$WORK/secrets" > /dev/null 2>&1 || fail "make_secrets.sh"
S="$WORK/secrets"
install -D -m 0440 -g 10001 "$S/api_keys" "$ROOT/etc/hmrec/keys/api_keys"
for f in tls.crt tls.key ca.crt; do install -D -m 0440 -g 10001 "$S/tls/$f" "$ROOT/etc/hmrec/tls/$f"; done
install -D -m 0440 -g 10001 "$S/redis_password" "$ROOT/etc/hmrec/redis/password"
make_tiny_bundle "$BUILD" "$SRC" "$WORK"
cp -a "$WORK/bundles/." "$ROOT/bundles/"
chown -R 10001:10001 "$ROOT/bundle"
in_image() {  # in_image CMD...: as uid 10001 in the image's files, with its environment
  chroot --userspec=10001:10001 "$ROOT" /usr/bin/env -i "${ENVS[@]}" HOME=/tmp "$@"
}
# The nightly job's script runs under the image's shell and finds its flags.
if in_image /opt/hmrec/bin/hmrec_retrain > "$WORK/retrain.log" 2>&1; then fail "hmrec_retrain ran without flags"; fi
grep -q "are required" "$WORK/retrain.log" || fail "hmrec_retrain in the image: $(cat "$WORK/retrain.log")"
# The Deployment's init container, its script as the manifest has it.
/usr/bin/python3 - "$SRC/deploy/k8s/server-deployment.yaml" > "$WORK/init.sh" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
init = d["spec"]["template"]["spec"]["initContainers"][0]
print(init["args"][0])
PY
in_image /bin/sh -c "$(cat "$WORK/init.sh")" > "$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; fail "init container script"; }
grep -q "fetched bundle v1" "$WORK/init.log" || fail "init: $(cat "$WORK/init.log")"
[[ -L "$ROOT/bundle/current" ]] || fail "the init script did not make /bundle/current"

# The entrypoint with the manifests' config; addresses moved to 127.0.0.1 and
# the shared Redis event store (a cluster Service) off.
P=$(free_port)
M=$(free_port)
H=$(free_port)
(cd "$ROOT/tmp" && exec chroot --userspec=10001:10001 "$ROOT" /usr/bin/env -i "${ENVS[@]}" HOME=/tmp \
  /opt/hmrec/bin/hmrec_server --config /etc/hmrec/config/server.pbtxt --listen "127.0.0.1:$P" --metrics "127.0.0.1:$M" \
  --http "127.0.0.1:$H" --events off) 2> "$WORK/server.log" &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 1 150); do grep -q "metrics on https://" "$WORK/server.log" && break; sleep 0.2; done
grep -q "metrics on https://" "$WORK/server.log" || fail "the image's server did not start: $(cat "$WORK/server.log")"
grep -q "auth: 4 clients from /etc/hmrec/keys/api_keys" "$WORK/server.log" || fail "no keys: $(cat "$WORK/server.log")"
SERVER=$(pgrep -f "hmrec_server --config /etc/hmrec/config/server.pbtxt --listen 127.0.0.1:$P" | head -1)
grep -Eq "^Uid:\s+10001\s" "/proc/$SERVER/status" || fail "the server does not run as uid 10001"
mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto"
ID=$(sed -n 2p "$WORK/data/customers.csv" | cut -d, -f1)
PYTHONPATH="$WORK/py" /usr/bin/python3 - "localhost:$P" "$ID" "$S" <<'PY' || fail "gRPC against the image's server"
import sys
import grpc
import recommender_pb2 as pb
import recommender_pb2_grpc as rpc
target, customer, secrets = sys.argv[1:4]
creds = grpc.ssl_channel_credentials(open(secrets + "/tls/ca.crt", "rb").read())
channel = grpc.secure_channel(target, creds)
grpc.channel_ready_future(channel).result(timeout=20)
# grpc.health.v1.Health/Check, empty request; SERVING = field 1 varint 1.
check = channel.unary_unary("/grpc.health.v1.Health/Check",
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
assert check(b"", timeout=10) == b"\x08\x01", "health is not SERVING"
stub = rpc.RecommenderStub(channel)
req = pb.RecommendRequest(customer_ids=[customer], k=12)
try:
    stub.Recommend(req, timeout=10)
    raise AssertionError("served without a key")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
key = open(secrets + "/keys/web").read().strip()
r = stub.Recommend(req, timeout=10, metadata=[("authorization", "Bearer " + key)])
assert len(r.results) == 1 and len(r.results[0].article_ids) == 12 and not r.results[0].fallback, r
print("image: health SERVING, refused without a key, Recommend answered over TLS with bundle", r.bundle_version)
PY
curl -sf --cacert "$S/tls/ca.crt" "https://localhost:$M/metrics" > "$WORK/metrics.txt" || fail "/metrics did not answer"
grep -q '^hmrec_request_duration_seconds' "$WORK/metrics.txt" || fail "no hmrec metrics: $(head -5 "$WORK/metrics.txt")"
curl -sf --cacert "$S/tls/ca.crt" "https://localhost:$H/readyz" > /dev/null || fail "/readyz did not answer"
kill -TERM "$SPID"
rc=0
wait "$SPID" || rc=$?
[[ $rc -eq 0 ]] || fail "SIGTERM: exit $rc: $(tail -3 "$WORK/server.log")"
grep -q "drain" "$WORK/server.log" || fail "no drain on SIGTERM: $(tail -3 "$WORK/server.log")"
echo "image: OK"
