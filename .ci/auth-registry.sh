#!/usr/bin/env bash
# Starts the authenticated registries of the `auth_registry` tests, with TLS from a
# throwaway CA, each on a free 127.0.0.1 port: Debian's docker-registry behind
# htpasswd (bcrypt, basic authentication), and a second one behind token
# authentication (bearer tokens from .ci/token-server.py, which takes the same user
# and password). Usage: .ci/auth-registry.sh DIR, where DIR receives the CA, the
# certificates and keys, the password file, the storages and the logs. Prints the
# variables the tests read, one NAME=VALUE a line (the password among them: capture
# them, never echo them), then one AUTH_REGISTRY_PID=… line per process started.
set -euo pipefail
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/storage" "$dir/token-storage"
cd "$dir"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
token_registry_port=$(free_port)
token_port=$(free_port)

# A CA made for this run only, and a server certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj "/CN=ledger test registry CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
  -extfile server.ext -out server.crt 2>/dev/null

user=ledger-ci
password=$(openssl rand -hex 16)
htpasswd -Bbn "$user" "$password" >htpasswd

cat >config.yml <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
auth:
  htpasswd:
    realm: ledger-test
    path: $dir/htpasswd
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $dir/server.crt
    key: $dir/server.key
YAML

# The token service's signing key; its certificate is the token registry's only root.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj "/CN=ledger test token signer" -keyout token-signer.key -out token-signer.crt 2>/dev/null
sed -e "s|rootdirectory: .*|rootdirectory: $dir/token-storage|" \
  -e "s|addr: 127.0.0.1:$port|addr: 127.0.0.1:$token_registry_port|" \
  -e '/^auth:/,/^http:/{/^http:/!d}' config.yml >token-config.yml
cat >>token-config.yml <<YAML
auth:
  token:
    realm: https://127.0.0.1:$token_port/token
    service: ledger-test-registry
    issuer: ledger-test-token-service
    rootcertbundle: $dir/token-signer.crt
YAML

pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
docker-registry serve config.yml >registry.log 2>&1 </dev/null &
pids+=($!)
docker-registry serve token-config.yml >token-registry.log 2>&1 </dev/null &
pids+=($!)
TOKEN_SERVER_USER=$user TOKEN_SERVER_PASSWORD=$password python3 "$here/token-server.py" \
  "$token_port" server.crt server.key token-signer.crt token-signer.key \
  ledger-test-token-service ledger-test-registry >token-server.log 2>&1 </dev/null &
pids+=($!)

answers() { # answers URL CODE: the URL answers CODE over TLS verified by the CA
  local code
  for _ in $(seq 120); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt "$1" || true)
    [ "$code" = "$2" ] && return 0
    sleep 0.25
  done
  return 1
}
if ! answers "https://127.0.0.1:$port/v2/" 401 \
  || ! answers "https://127.0.0.1:$token_registry_port/v2/" 401 \
  || ! answers "https://127.0.0.1:$token_port/token" 401; then
  tail -20 registry.log token-registry.log token-server.log >&2
  stop_all
  exit 1
fi
echo "LEDGER_TEST_AUTH_REGISTRY=127.0.0.1:$port"
echo "LEDGER_TEST_TOKEN_REGISTRY=127.0.0.1:$token_registry_port"
echo "LEDGER_TEST_AUTH_REGISTRY_USER=$user"
echo "LEDGER_TEST_AUTH_REGISTRY_PASSWORD=$password"
echo "LEDGER_TEST_AUTH_REGISTRY_CA=$dir/ca.crt"
for p in "${pids[@]}"; do echo "AUTH_REGISTRY_PID=$p"; done
