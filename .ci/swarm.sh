#!/usr/bin/env bash
# Single-node Docker Swarm and a local registry for the Swarm engine tests.
#   .ci/swarm.sh up     init the swarm, start Debian's docker-registry on
#                       127.0.0.1:5000 (plain HTTP, no auth: loopback only)
#   .ci/swarm.sh down   remove nbhtest- services, stop the registry, leave
#                       the swarm (the engine is shared: nothing may stay
#                       in swarm mode)
# State (registry storage, pid, log) lives in $NBH_SWARM_DIR
# (default /tmp/nbh-swarm).
set -euo pipefail
dir=${NBH_SWARM_DIR:-/tmp/nbh-swarm}
addr=${NBH_REGISTRY_ADDR:-127.0.0.1:5000}

up() {
	mkdir -p "$dir/storage"
	command -v docker-registry >/dev/null || {
		# The package lists may be gone since the last update (seen in CI):
		# update right before the install.
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
	}
	# The node address: the first non-loopback IPv4 of the default route.
	ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") print $(i+1)}')
	[ -n "$ip" ] || ip=$(hostname -I | awk '{print $1}')
	if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
		docker swarm init --advertise-addr "$ip" >/dev/null
		touch "$dir/we-made-the-swarm"
	fi
	cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/storage}
  delete: {enabled: true}
http:
  addr: $addr
YAML
	if ! curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
		docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
		echo $! >"$dir/registry.pid"
		for _ in $(seq 100); do
			curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break
			sleep 0.1
		done
		curl -fsS "http://$addr/v2/" >/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
	fi
	echo "swarm up on $ip, registry on $addr"
}

down() {
	if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
		docker service ls -q --filter name=nbhtest- | xargs -r docker service rm >/dev/null || true
		if [ -e "$dir/we-made-the-swarm" ] || [ "${1:-}" = --force ]; then
			docker swarm leave --force >/dev/null || true
		fi
	fi
	rm -f "$dir/we-made-the-swarm"
	if [ -s "$dir/registry.pid" ]; then
		kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
		rm -f "$dir/registry.pid"
	fi
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E "^${addr//./\\.}/nbhtest-" | xargs -r docker image rm >/dev/null 2>&1 || true
	rm -rf "$dir/storage"
	echo "swarm down"
}

case ${1:-} in
up) up ;;
down) shift; down "$@" ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
