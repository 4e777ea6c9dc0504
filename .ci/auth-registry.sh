#!/usr/bin/env bash
# Starts Debian's docker-registry behind htpasswd (bcrypt) authentication and TLS from
# a throwaway CA, on a free 127.0.0.1 port: the authenticated registry of the
# `auth_registry` tests. Usage: .ci/auth-registry.sh DIR, where DIR receives the CA,
# the server's certificate and key, the password file, the storage and the log.
# Prints the variables the tests read, one NAME=VALUE a line (the password among them:
# capture them, never echo them), and AUTH_REGISTRY_PID=… last.
set -euo pipefail
dir=$1
mkdir -p "$dir/storage"
cd "$dir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

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

docker-registry serve config.yml >registry.log 2>&1 </dev/null &
pid=$!
for _ in $(seq 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt "https://127.0.0.1:$port/v2/" || true)
  [ "$code" = 401 ] && break
  sleep 0.25
done
if [ "$code" != 401 ]; then
  tail -20 registry.log >&2
  kill "$pid" 2>/dev/null || true
  exit 1
fi
echo "LEDGER_TEST_AUTH_REGISTRY=127.0.0.1:$port"
echo "LEDGER_TEST_AUTH_REGISTRY_USER=$user"
echo "LEDGER_TEST_AUTH_REGISTRY_PASSWORD=$password"
echo "LEDGER_TEST_AUTH_REGISTRY_CA=$dir/ca.crt"
echo "AUTH_REGISTRY_PID=$pid"
