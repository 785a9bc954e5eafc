#!/usr/bin/env bash
# Single-node Docker Swarm and local registries for the Swarm engine tests.
#   .ci/swarm.sh up     init the swarm, start Debian's docker-registry on
#                       127.0.0.1:5000 (plain HTTP, no auth: loopback only),
#                       and a second one on 127.0.0.1:5443 as a real site
#                       runs it: TLS (a test CA, trusted by the engine in
#                       /etc/docker/certs.d/127.0.0.1:5443/) and htpasswd
#                       authentication, its credentials in a docker
#                       config.json (mode 0600) for engine.registry-auth-file
#   .ci/swarm.sh down   remove nbhtest- services, stop the registries, leave
#                       the swarm (the engine is shared: nothing may stay
#                       in swarm mode)
# State (registry storage, pid, log, CA, credentials) lives in
# $NBH_SWARM_DIR (default /tmp/nbh-swarm). Both registries allow deletes
# (nbh-sync deletes old builds through the registry API).
# For the tests:
#   NBH_REGISTRY=127.0.0.1:5000 NBH_AUTH_REGISTRY=127.0.0.1:5443
#   NBH_AUTH_REGISTRY_FILE=$NBH_SWARM_DIR/auth/config.json
set -euo pipefail
dir=${NBH_SWARM_DIR:-/tmp/nbh-swarm}
addr=${NBH_REGISTRY_ADDR:-127.0.0.1:5000}
authaddr=${NBH_AUTH_REGISTRY_ADDR:-127.0.0.1:5443}
certsd=/etc/docker/certs.d/$authaddr

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
		REGISTRY_STORAGE_DELETE_ENABLED=true docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
		echo $! >"$dir/registry.pid"
		for _ in $(seq 100); do
			curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break
			sleep 0.1
		done
		curl -fsS "http://$addr/v2/" >/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
	fi
	auth_up
	echo "swarm up on $ip, registry on $addr, registry with TLS and htpasswd on $authaddr"
}

# auth_up starts the registry with TLS and authentication.
auth_up() {
	command -v htpasswd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null
	a=$dir/auth
	mkdir -p "$a/storage"
	if [ ! -s "$a/ca.crt" ]; then
		# A test CA, and the registry's certificate for its loopback
		# address, signed by it.
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=nbhtest-ca \
			-keyout "$a/ca.key" -out "$a/ca.crt" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj "/CN=${authaddr%:*}" \
			-keyout "$a/registry.key" -out "$a/registry.csr" 2>/dev/null
		printf 'subjectAltName=IP:%s\n' "${authaddr%:*}" >"$a/san.ext"
		openssl x509 -req -in "$a/registry.csr" -CA "$a/ca.crt" -CAkey "$a/ca.key" -CAcreateserial \
			-days 2 -extfile "$a/san.ext" -out "$a/registry.crt" 2>/dev/null
		pw=$(openssl rand -hex 16)
		htpasswd -Bbc "$a/htpasswd" nbhtest "$pw" 2>/dev/null
		(umask 077; printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$authaddr" "$(printf 'nbhtest:%s' "$pw" | base64 -w0)" >"$a/config.json")
	fi
	# The engine trusts the registry's CA from certs.d (read at each pull
	# and push, no restart); nbh-sync reads the same place.
	mkdir -p "$certsd"
	cp "$a/ca.crt" "$certsd/ca.crt"
	cat >"$a/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $a/storage}
  delete: {enabled: true}
http:
  addr: $authaddr
  tls: {certificate: $a/registry.crt, key: $a/registry.key}
auth:
  htpasswd: {realm: nbhtest, path: $a/htpasswd}
YAML
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$a/ca.crt" "https://$authaddr/v2/")" != 401 ]; then
		REGISTRY_STORAGE_DELETE_ENABLED=true docker-registry serve "$a/config.yml" >"$a/registry.log" 2>&1 &
		echo $! >"$a/registry.pid"
		for _ in $(seq 100); do
			[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$a/ca.crt" "https://$authaddr/v2/")" = 401 ] && break
			sleep 0.1
		done
		[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$a/ca.crt" "https://$authaddr/v2/")" = 401 ] || { cat "$a/registry.log" >&2; exit 1; }
	fi
}

# auth_down stops the registry with TLS and authentication and forgets it.
auth_down() {
	a=$dir/auth
	if [ -s "$a/registry.pid" ]; then
		kill "$(cat "$a/registry.pid")" 2>/dev/null || true
	fi
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E "^${authaddr//./\\.}/" | xargs -r docker image rm >/dev/null 2>&1 || true
	rm -rf "$a" "$certsd"
}

down() {
	if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
		docker service ls -q --filter name=nbhtest- | xargs -r docker service rm >/dev/null || true
		if [ -e "$dir/we-made-the-swarm" ] || [ "${1:-}" = --force ]; then
			docker swarm leave --force >/dev/null || true
		fi
	fi
	rm -f "$dir/we-made-the-swarm"
	auth_down
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
# The registry with authentication alone, beside a swarm and registry that
# someone else started (and will take down).
auth-up) auth_up ;;
auth-down) auth_down ;;
*) echo "usage: $0 up|down|auth-up|auth-down" >&2; exit 2 ;;
esac
