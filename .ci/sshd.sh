#!/usr/bin/env bash
# Starts an OpenSSH server on port 22 of a free loopback address for the ssh:// engine
# test: the machine's engine reached the way `DOCKER_HOST=ssh://…` reaches one (ssh
# runs `docker system dial-stdio` on the host). Key authentication only, a throwaway
# host key and a throwaway client key (given to the tests through an ssh agent, never
# a file ledger is told about). Usage: .ci/sshd.sh DIR. Prints the variables the tests read, one
# NAME=VALUE a line, then SSHD_PID=… and SSH_AGENT_PID=….
set -euo pipefail
dir=$1
mkdir -p "$dir" /run/sshd
cd "$dir"
# Port 22 on a loopback address of its own: ssh:// engine URLs carry no port (the
# port of a host is set in ~/.ssh/config), so the test host must answer on 22.
host=$(python3 - <<'PY'
import socket
for n in range(2, 255):
    s = socket.socket()
    try:
        s.bind((f"127.0.0.{n}", 22))
    except OSError:
        continue
    print(f"127.0.0.{n}")
    break
PY
)
[ -n "$host" ] || { echo "no loopback address has port 22 free" >&2; exit 1; }

ssh-keygen -q -t ed25519 -N '' -C 'ledger test host' -f host_ed25519
ssh-keygen -q -t ed25519 -N '' -C 'ledger test client' -f client_ed25519
cp client_ed25519.pub authorized_keys
chmod 600 authorized_keys
cat >sshd_config <<CONF
ListenAddress $host:22
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
CONF

# A host key from an earlier run on this port would be refused as changed: ssh keeps
# known hosts in the user's own ~/.ssh, so forget ours there first.
ssh-keygen -q -R "$host" >/dev/null 2>&1 || true

/usr/sbin/sshd -D -e -f "$dir/sshd_config" >sshd.log 2>&1 </dev/null &
sshd_pid=$!
eval "$(ssh-agent -a "$dir/agent.sock" -s)" >/dev/null
SSH_AUTH_SOCK="$dir/agent.sock" ssh-add -q client_ed25519

for _ in $(seq 80); do
  if SSH_AUTH_SOCK="$dir/agent.sock" ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
    "root@$host" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "LEDGER_TEST_SSH_ENGINE=ssh://root@$host"
    echo "LEDGER_TEST_SSH_AUTH_SOCK=$dir/agent.sock"
    echo "SSHD_PID=$sshd_pid"
    echo "SSH_AGENT_PID=$SSH_AGENT_PID"
    exit 0
  fi
  sleep 0.25
done
tail -20 sshd.log >&2
kill "$sshd_pid" "$SSH_AGENT_PID" 2>/dev/null || true
exit 1
