#!/usr/bin/env bash
# A second swarm node on this machine, for the two-node Swarm test: a
# second dockerd (own data root, vfs storage) in its own network namespace
# (10.99.0.2, veth to the host's 10.99.0.1), joined as a worker to the swarm
# of .ci/swarm.sh. Inside the namespace a second docker-registry process
# serves the same storage on 127.0.0.1:5000, so registry references name the
# same images on both nodes.
#   .ci/twonode.sh up | down      (after .ci/swarm.sh up; before .ci/swarm.sh down)
set -euo pipefail
ns=nbhtest-node2
dir=${NBH_NODE2_DIR:-/tmp/nbhtest-node2}
swarmdir=${NBH_SWARM_DIR:-/tmp/nbh-swarm}
sock=unix://$dir/docker.sock

up() {
	mkdir -p "$dir/data" "$dir/exec"
	if ! ip netns list | grep -qw "$ns"; then
		ip netns add "$ns"
		ip link add nbhtest-h type veth peer name nbhtest-n
		ip link set nbhtest-n netns "$ns"
		ip addr add 10.99.0.1/24 dev nbhtest-h
		ip link set nbhtest-h up
		ip netns exec "$ns" ip addr add 10.99.0.2/24 dev nbhtest-n
		ip netns exec "$ns" ip link set nbhtest-n up
		ip netns exec "$ns" ip link set lo up
		ip netns exec "$ns" ip route add default via 10.99.0.1
	fi
	echo "{\"data-root\": \"$dir/data\", \"storage-driver\": \"vfs\"}" >"$dir/daemon.json"
	# nsenter, not ip netns exec: that one remounts /sys and hides the
	# cgroup hierarchies dockerd needs.
	if ! DOCKER_HOST=$sock docker version >/dev/null 2>&1; then
		nsenter --net=/var/run/netns/$ns dockerd --config-file "$dir/daemon.json" --exec-root "$dir/exec" \
			-H "$sock" --pidfile "$dir/docker.pid" --cgroup-parent nbhtest-node2 >"$dir/dockerd.log" 2>&1 &
		echo $! >"$dir/dockerd.pid"
		for _ in $(seq 120); do DOCKER_HOST=$sock docker version >/dev/null 2>&1 && break; sleep 0.5; done
		DOCKER_HOST=$sock docker version >/dev/null || { tail "$dir/dockerd.log" >&2; exit 1; }
	fi
	sed 's/^  addr: .*/  addr: 127.0.0.1:5000/' "$swarmdir/config.yml" >"$dir/registry.yml"
	if ! nsenter --net=/var/run/netns/$ns curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
		nsenter --net=/var/run/netns/$ns docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
		echo $! >"$dir/registry.pid"
		for _ in $(seq 100); do nsenter --net=/var/run/netns/$ns curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && break; sleep 0.1; done
	fi
	if [ "$(DOCKER_HOST=$sock docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
		manager=$(docker info --format '{{.Swarm.NodeAddr}}')
		DOCKER_HOST=$sock docker swarm join --advertise-addr 10.99.0.2 \
			--token "$(docker swarm join-token -q worker)" "$manager:2377" >/dev/null
	fi
	echo "worker node up at 10.99.0.2"
}

down() {
	if DOCKER_HOST=$sock docker version >/dev/null 2>&1; then
		id=$(DOCKER_HOST=$sock docker info --format '{{.Swarm.NodeID}}')
		DOCKER_HOST=$sock docker swarm leave --force >/dev/null 2>&1 || true
		[ -n "$id" ] && docker node rm --force "$id" >/dev/null 2>&1 || true
	fi
	for p in dockerd registry; do
		if [ -s "$dir/$p.pid" ]; then
			pid=$(cat "$dir/$p.pid")
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
			rm -f "$dir/$p.pid"
		fi
	done
	ip netns del "$ns" 2>/dev/null || true
	ip link del nbhtest-h 2>/dev/null || true
	rm -rf "$dir"
	echo "worker node down"
}

case ${1:-} in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
