#!/usr/bin/env bash
# Starts a second, private Docker engine, a single-node swarm manager: the "remote"
# production engine of the `remote_engine` tests. It listens on a free 127.0.0.1 TCP
# port with TLS and client certificate authentication (`--tlsverify`), from a
# throwaway CA, the way a remote engine is exposed (https://docs.docker.com/engine/security/protect-access/). It has
# its own data root, exec root, pid file and bridge (10.251.0.1/24, no iptables
# changes), so nothing it runs is visible to the machine's own engine, and the other
# way round: images reach it only through a registry.
#
# Usage: .ci/tls-engine.sh DIR. DIR receives the CA, the server's and the client's
# certificates and keys (the client's in DIR/client as ca.pem, cert.pem, key.pem,
# Docker's DOCKER_CERT_PATH layout), the engine's state and its log. Prints the
# variables the tests read, one NAME=VALUE a line, then TLS_ENGINE_PID=….
set -euo pipefail
dir=$1
bridge=ledger-tls0
mkdir -p "$dir/client" "$dir/data" "$dir/exec"
cd "$dir"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
swarm_port=$(free_port)

ec() { echo "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"; }
# shellcheck disable=SC2046
openssl req -x509 $(ec) -days 7 -subj "/CN=ledger test engine CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
sign() { # sign NAME SUBJECT EXTENSIONS
  # shellcheck disable=SC2046
  openssl req -new $(ec) -subj "$2" -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  printf '%b' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
    -extfile "$1.ext" -out "$1-cert.pem" 2>/dev/null
}
sign server "/CN=127.0.0.1" 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n'
sign client "/CN=ledger test client" 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
cp ca.pem client/ca.pem
cp client-cert.pem client/cert.pem
cp client-key.pem client/key.pem
chmod 600 client/key.pem server-key.pem ca.key

# Its own bridge, so the two engines never share docker0.
if ! ip link show "$bridge" >/dev/null 2>&1; then
  ip link add "$bridge" type bridge
  ip addr add 10.251.0.1/24 dev "$bridge"
fi
ip link set "$bridge" up

# Its own (empty) daemon.json: the machine's /etc/docker/daemon.json belongs to the
# machine's engine. vfs storage works wherever dockerd does (the images are tiny).
echo '{}' >daemon.json
dockerd --config-file "$dir/daemon.json" --storage-driver vfs --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
  --host "unix://$dir/docker.sock" --host "tcp://127.0.0.1:$port" \
  --tlsverify --tlscacert "$dir/ca.pem" --tlscert "$dir/server-cert.pem" --tlskey "$dir/server-key.pem" \
  --bridge "$bridge" --iptables=false --ip-forward=false --ip-masq=false \
  --insecure-registry 127.0.0.0/8 \
  >dockerd.log 2>&1 </dev/null &
pid=$!
# From here on, a failure stops the engine it started.
trap 'kill "$pid" 2>/dev/null || true' ERR

for _ in $(seq 240); do
  if DOCKER_HOST="unix://$dir/docker.sock" docker info >/dev/null 2>&1; then break; fi
  sleep 0.25
done
if ! DOCKER_HOST="tcp://127.0.0.1:$port" DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$dir/client" \
  docker version >/dev/null 2>&1; then
  tail -20 dockerd.log >&2
  kill "$pid" 2>/dev/null || true
  exit 1
fi
# A single-node swarm on it, for the Swarm target's tests: services publish in host
# mode (the routing mesh needs more of the network than this engine has).
# Its manager listens on a free loopback port, not the default *:2377.
DOCKER_HOST="unix://$dir/docker.sock" docker swarm init --listen-addr "127.0.0.1:$swarm_port" \
  --advertise-addr "127.0.0.1:$swarm_port" >/dev/null
echo "LEDGER_TEST_TLS_ENGINE=tcp://127.0.0.1:$port"
echo "LEDGER_TEST_TLS_ENGINE_CERTS=$dir/client"
echo "LEDGER_TEST_TLS_ENGINE_SOCKET=unix://$dir/docker.sock"
echo "TLS_ENGINE_PID=$pid"
