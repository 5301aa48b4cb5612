# Shared by the e2e scripts (sourced): fail, and a tiny servable bundle.

fail() { echo "FAIL: $*" >&2; exit 1; }

# make_tiny_bundle BUILD SRC WORK: tiny generated data in WORK/data and a
# sealed, current bundle WORK/bundles/v1 trained on all of it for one epoch.
make_tiny_bundle() {
  local build=$1 src=$2 work=$3
  "$build/datagen/hmrec_datagen" --scale tiny --out "$work/data" --quiet
  "$build/trainer/hmrec_trainer" --config "$src/tests/data/trainer_tiny.pbtxt" --data "$work/data" \
    --work_dir "$work/train" --bundles "$work/bundles" --version v1 --epochs 1 > /dev/null 2> "$work/train.log" \
    || { cat "$work/train.log" >&2; fail "trainer"; }
  "$build/index_builder/hmrec_index_builder" --config "$src/configs/index_builder.pbtxt" --bundle "$work/bundles/v1" \
    --data "$work/data" --quiet 2> "$work/ib.log" || { cat "$work/ib.log" >&2; fail "index builder"; }
}

# start_server LOG ARGS...: $BUILD/server/hmrec_server ARGS... in the
# background with its stderr in LOG; waits until it listens (and, unless
# ARGS say --metrics off, serves /metrics), then sets PID, PORT and MURL.
start_server() {
  local log=$1
  shift
  "$BUILD/server/hmrec_server" "$@" 2> "$log" &
  PID=$!
  local ready="metrics on http"
  if [[ " $* " == *" --metrics off "* ]]; then ready="listening on 127.0.0.1:"; fi
  for _ in $(seq 1 150); do grep -q "$ready" "$log" && break; sleep 0.2; done
  grep -q "$ready" "$log" || fail "server did not start: $(cat "$log")"
  # The HTTP line comes after the others: wait for it too when asked for.
  if [[ " $* " == *" --http "* && " $* " != *" --http off "* ]]; then
    for _ in $(seq 1 100); do grep -q "HTTP/JSON API on" "$log" && break; sleep 0.1; done
  fi
  PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
  MURL=$(grep -Eo 'https?://127.0.0.1:[0-9]*/metrics' "$log" || true)
  HTTP=$(grep -Eo 'https?://127.0.0.1:[0-9]*/v1/recommend' "$log" | sed 's|/v1/recommend||' || true)
}

# make_certs DIR: a CA (test-ca), a server certificate for 127.0.0.1 and
# localhost, a client certificate with CN batch-job, and a client
# certificate from an unrelated CA (rogue), all made by openssl here.
make_certs() {
  local c=$1
  mkdir -p "$c"
  _key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2> /dev/null; }
  _ca() {
    _key "$c/$1.key"
    openssl req -x509 -new -key "$c/$1.key" -out "$c/$1.pem" -days 2 -subj "/CN=$1" 2> /dev/null
  }
  _leaf() {  # _leaf NAME CN CA EXTENSIONS
    _key "$c/$1.key"
    openssl req -new -key "$c/$1.key" -out "$c/$1.csr" -subj "/CN=$2" 2> /dev/null
    printf '%s\n' "$4" > "$c/$1.ext"
    openssl x509 -req -in "$c/$1.csr" -CA "$c/$3.pem" -CAkey "$c/$3.key" -CAcreateserial -out "$c/$1.pem" \
      -days 2 -extfile "$c/$1.ext" 2> /dev/null
  }
  _ca test-ca
  _ca rogue-ca
  _leaf server server test-ca "subjectAltName=DNS:localhost,IP:127.0.0.1"
  _leaf client batch-job test-ca "extendedKeyUsage=clientAuth"
  _leaf rogue batch-job rogue-ca "extendedKeyUsage=clientAuth"
}

# make_key DIR NAME SCOPES: a new API key in DIR/NAME and its line in
# DIR/keys, made by scripts/make_api_key.sh (what operators run).
make_key() {
  mkdir -p "$1"
  bash "$SRC/scripts/make_api_key.sh" "$2" "$3" "$1/$2" "$1/keys" 2> /dev/null || fail "make_api_key.sh $2 $3"
}

# free_port: a TCP port free on 127.0.0.1 now.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
