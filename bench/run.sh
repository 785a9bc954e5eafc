#!/usr/bin/env bash
# bench/run.sh — every benchmark of bench/README.md in sequence, then a
# summary table of the ratios (nbh-sync / baseline; lower is better).
# This is what `make bench` runs. Sizes come from the environment:
#
#   BENCH_REPOS=1000       bench/gitpoll: course repos polled
#   BENCH_TRANSPORT=http   bench/gitpoll: http (git http-backend) or file
#   BENCH_ROUNDS=3         bench/gitpoll, bench/pass, bench/cascade: timed rounds
#   BENCH_SPAWN=10         bench/spawn: iterations (-benchtime Nx), new and returning
#   BENCH_CONTAINERS="1000 10000"  bench/pass: containers, one run per size (CI: 100)
#   BENCH_RUNNING=50       bench/pass: of which running fake Jupyter servers
#   BENCH_NAIVE_MAX=1000   bench/pass: sizes above it skip the docker ps + inspect baselines
#   BENCH_WATCHTOWER=BIN   bench/pass: a watchtower binary to time beside the pass, or
#   BENCH_WATCHTOWER_SRC=DIR  a checkout of github.com/containrrr/watchtower to build it from
#   BENCH_COURSES=500      bench/memory: courses
#   BENCH_MEM_CONTAINERS=10000  bench/memory: containers
#   BENCH_CASCADE=20       bench/cascade: course images FROM the core image
#   BENCH_SERVERS=1000     bench/probe: running servers probed per round
#   BENCH_ENGINE=10        bench/probe: real containers for the engine CPU reads (0: skip)
#   BENCH_WEBSOCKETS=1000  bench/frontdoor: idle websockets held open
#   BENCH_CLASS=100        bench/frontdoor class and warmclass: students starting at once
#   BENCH_STUDENTS=1000    bench/workspace: workspaces merged after a push (and git clones beside)
#   BENCH_CMDS="1000 10000"  bench/cmds: containers plan/status/why read, one run per size (grown in place)
#   BENCH_ONLY="pass spawn" run only these
#   BENCH_OUT=DIR          where the full outputs go (default: a temp dir)
#
# A failing benchmark is reported and the others still run; the exit status
# is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
GO=${GO:-go}
OUT=${BENCH_OUT:-$(mktemp -d -t nbh-bench.XXXXXX)}
mkdir -p "$OUT"
ONLY=${BENCH_ONLY:-gitpoll spawn returning build cascade pass cmds probe memory frontdoor class warmclass workspace}
REPOS=${BENCH_REPOS:-1000} TRANSPORT=${BENCH_TRANSPORT:-http} ROUNDS=${BENCH_ROUNDS:-3} SPAWN=${BENCH_SPAWN:-10}
CONTAINERS=${BENCH_CONTAINERS:-1000 10000} RUNNING=${BENCH_RUNNING:-50} NAIVE_MAX=${BENCH_NAIVE_MAX:-1000}
COURSES=${BENCH_COURSES:-500} MEM_CONTAINERS=${BENCH_MEM_CONTAINERS:-10000} CASCADE=${BENCH_CASCADE:-20}
SERVERS=${BENCH_SERVERS:-1000} ENGINE=${BENCH_ENGINE:-10}
WEBSOCKETS=${BENCH_WEBSOCKETS:-1000}
STUDENTS=${BENCH_STUDENTS:-1000}
export BENCH_CLASS=${BENCH_CLASS:-100}

rows=()
failed=0
row() { rows+=("$(printf '%-9s | %-30s | %-20s | %-36s | %s' "$@")"); }

bench() { # name, command...
	local name=$1; shift
	case " $ONLY " in *" $name "*) ;; *) return 1 ;; esac
	echo "=== $name: $*" >&2
	local t0=$SECONDS
	if "$@" >"$OUT/$name.txt" 2>&1; then
		echo "    ok in $((SECONDS - t0))s ($OUT/$name.txt)" >&2
		return 0
	fi
	echo "    FAILED in $((SECONDS - t0))s; last lines:" >&2
	tail -n 15 "$OUT/$name.txt" | sed 's/^/    /' >&2
	failed=1
	row "$name" "FAILED" "" "" "see $OUT/$name.txt"
	return 2
}

if bench gitpoll "$GO" run ./bench/gitpoll -repos "$REPOS" -rounds "$ROUNDS" -transport "$TRANSPORT"; then
	l=$(grep '^RESULT gitpoll' "$OUT/gitpoll.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row gitpoll "no change, $REPOS repos, $TRANSPORT" "CPU $(get cpu), $(get wall)" "CPU $(get base_cpu), $(get base_wall) (git fetch)" "CPU $(get cpu_ratio), wall $(get wall_ratio)"
	row gitpoll "1 of $REPOS changed, $TRANSPORT" "CPU $(get one_cpu), $(get one_wall)" "CPU $(get one_base_cpu), $(get one_base_wall) (git fetch)" "CPU $(get one_cpu_ratio), wall $(get one_wall_ratio)"
fi

if bench spawn "$GO" test -run XXX -bench SpawnVsDockerRun -benchtime "${SPAWN}x" -count 1 ./bench/spawn/; then
	read -r nbh base ratio < <(awk '/^BenchmarkSpawnVsDockerRun/ {for (i=1;i<=NF;i++) {if ($i=="spawn-ms/op") s=$(i-1); if ($i=="dockerrun-ms/op") d=$(i-1); if ($i=="ratio") r=$(i-1)}; print s, d, r}' "$OUT/spawn.txt")
	row spawn "new student, ${SPAWN}x" "${nbh} ms" "${base} ms (docker run -d)" "wall $ratio"
fi

if bench returning "$GO" test -run XXX -bench ReturningStudent -benchtime "${SPAWN}x" -count 1 ./bench/spawn/; then
	read -r nbh base ratio < <(awk '/^BenchmarkReturningStudent/ {for (i=1;i<=NF;i++) {if ($i=="spawn-ms/op") s=$(i-1); if ($i=="dockerstart-ms/op") d=$(i-1); if ($i=="ratio") r=$(i-1)}; print s, d, r}' "$OUT/returning.txt")
	row returning "stopped container, ${SPAWN}x" "${nbh} ms" "${base} ms (docker start)" "wall $ratio"
fi

if [ -d bench/build ]; then
	# bench/build (from the images work): a Go program or a go test benchmark.
	if ls bench/build/*_test.go >/dev/null 2>&1; then
		cmd=("$GO" test -run XXX -bench . -count 1 ./bench/build/)
	else
		cmd=("$GO" run ./bench/build)
	fi
	if bench build "${cmd[@]}"; then
		ratio=$(grep -iEo 'ratio[^0-9]*[0-9.]+' "$OUT/build.txt" | tail -n 1)
		row build "image build" "" "(engine build)" "${ratio:-see $OUT/build.txt}"
	fi
else
	case " $ONLY " in *" build "*) row build "not in this tree" "" "" "bench/build missing" ;; esac
fi

if bench cascade "$GO" run ./bench/cascade -courses "$CASCADE" -rounds "$ROUNDS"; then
	l=$(grep '^RESULT cascade' "$OUT/cascade.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row cascade "core change, $CASCADE courses on it" "$(get nbh) (sync)" "$(get base) ($((CASCADE + 1)) builds by hand)" "wall $(get ratio); notebooks only: $(get notebook_builds) builds"
fi

# watchtower, the pass's baseline, from its source (its module is not on
# the Go proxy; its dependencies are).
WATCHTOWER=${BENCH_WATCHTOWER:-}
if [ -z "$WATCHTOWER" ] && [ -n "${BENCH_WATCHTOWER_SRC:-}" ]; then
	case " $ONLY " in *" pass "*)
		echo "=== building watchtower from $BENCH_WATCHTOWER_SRC" >&2
		(cd "$BENCH_WATCHTOWER_SRC" && "$GO" build -o "$OUT/watchtower" .) >&2 && WATCHTOWER=$OUT/watchtower ;;
	esac
fi
for n in $CONTAINERS; do
	naive=true
	[ "$n" -gt "$NAIVE_MAX" ] && [ -n "$WATCHTOWER" ] && naive=false
	args=(-n "$n" -running "$RUNNING" -rounds "$ROUNDS" -naive="$naive")
	[ -n "$WATCHTOWER" ] && args+=(-watchtower "$WATCHTOWER")
	bench pass "$GO" run ./bench/pass "${args[@]}" || continue
	f=$OUT/pass-$n.txt
	mv "$OUT/pass.txt" "$f"
	while read -r l; do
		get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
		row pass "observe+plan, $n ctrs" "$(get nbh), $(get calls) calls" "$(get base), $(get base_calls) calls ($(get baseline))" "wall $(get ratio) (x$(get speedup))"
	done < <(grep '^RESULT pass ' "$f")
	one=$(grep '^RESULT apply concurrency=1 ' "$f")
	conc=$(grep '^RESULT apply concurrency=' "$f" | grep -v 'concurrency=1 ')
	if [ -n "$one" ] && [ -n "$conc" ]; then
		l=$conc; c=$(get concurrency); w=$(get wall); r=$(get retired); k=$(get calls)
		l=$one; row pass "apply, $n ctrs, $r retired" "$w, $k calls (conc. $c)" "$(get wall) (one at a time)" "$(sed -n 's/^ratio concurrency [0-9]* \/ 1: \(.*\)/\1/p' "$f")"
	fi
done

# The read-only commands as whole processes, beside one docker ps of the
# same containers (best of BENCH_ROUNDS each, interleaved).
if bench cmds "$GO" run ./bench/cmds -n "${BENCH_CMDS:-1000 10000}" -runs "$ROUNDS"; then
	while read -r l; do
		get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
		c=$(sed -n 's/.* cmd="\([^"]*\)".*/\1/p' <<<"$l")
		row cmds "$c, $(get n) ctrs" "$(get nbh), $(get calls) calls" "$(get base) (docker ps -a --filter)" "wall $(get ratio), cpu $(get cpu_ratio)"
	done < <(grep '^RESULT cmds ' "$OUT/cmds.txt")
fi

if bench probe "$GO" run ./bench/probe -n "$SERVERS" -rounds "$ROUNDS" -engine "$ENGINE"; then
	l=$(grep '^RESULT probe' "$OUT/probe.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row probe "probe round, $SERVERS servers" "$(get cpu) (+CPU, memory)" "$(get today) (HTTP only)" "wall $(get ratio); via engine $(get engine_ratio)"
fi

if bench memory "$GO" run ./bench/memory -courses "$COURSES" -containers "$MEM_CONTAINERS"; then
	l=$(grep '^RESULT memory' "$OUT/memory.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row memory "daemon, $COURSES courses, $MEM_CONTAINERS ctrs" "$(get rss_kb) kB RSS, peak $(get hwm_kb)" "$(get floor_kb) kB (sleep)" "goal 51200 kB; heap top in $OUT/memory.txt"
fi

if bench frontdoor "$GO" run ./bench/frontdoor -websockets "$WEBSOCKETS" -rounds "$ROUNDS"; then
	f=$OUT/frontdoor.txt
	l=$(grep '^RESULT frontdoor ' "$f")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row frontdoor "small request, fake server" "+$(get added_p50) p50" "direct" "p50 $(get p50_ratio), p99 $(get p99_ratio)"
	if [ "$(get jupyter_p50_ratio)" != "0.00" ]; then
		row frontdoor "real Jupyter api/status" "" "direct" "p50 $(get jupyter_p50_ratio), p99 $(get jupyter_p99_ratio)"
	fi
	row frontdoor "websocket round trip" "" "direct" "p50 $(get ws_p50_ratio), p99 $(get ws_p99_ratio)"
	row frontdoor "100 MB download" "" "direct" "throughput x$(get tput_ratio)"
	row frontdoor "$(get websockets) idle websockets" "$(get rss_ws_kb) kB RSS" "$(get rss_idle_kb) kB (proxy, none open)" "$(get per_ws_kb) kB each"
	l=$(grep '^RESULT frontdoor_vs_chp ' "$f")
	if [ -n "$l" ]; then
		row frontdoor "beside configurable-http-proxy, fake server" "" "CHP, same run" "p50 $(get p50_ratio), ws p50 $(get ws_p50_ratio), download x$(get tput_ratio)"
		if [ -n "$(get cell_p50_ratio)" ]; then
			row frontdoor "beside configurable-http-proxy, real Jupyter" "" "CHP, same run" "api/status p50 $(get jupyter_p50_ratio), p99 $(get jupyter_p99_ratio); cell p50 $(get cell_p50_ratio), p99 $(get cell_p99_ratio); download x$(get jupyter_tput_ratio)"
		fi
	fi
fi

if bench class "$GO" test -run XXX -bench ClassStart -benchtime 1x -count 1 ./bench/frontdoor/; then
	read -r fd dr served ratio < <(awk '/^BenchmarkClassStart/ {for (i=1;i<=NF;i++) {if ($i=="frontdoor-p99-ms") f=$(i-1); if ($i=="dockerrun-p99-ms") d=$(i-1); if ($i=="served") s=$(i-1); if ($i=="p99-ratio") r=$(i-1)}; print f, d, s, r}' "$OUT/class.txt")
	row class "$BENCH_CLASS students at once, TTFB" "p99 ${fd} ms, ${served} served" "p99 ${dr} ms (docker run -d + wait)" "p99 $ratio"
fi

if bench warmclass "$GO" test -run XXX -bench WarmClass -benchtime 1x -count 1 ./bench/frontdoor/; then
	read -r w c served ratio up eng upratio < <(awk '/^BenchmarkWarmClass/ {for (i=1;i<=NF;i++) {if ($i=="warm-p99-ms") w=$(i-1); if ($i=="cold-p99-ms") c=$(i-1); if ($i=="served") s=$(i-1); if ($i=="p99-ratio") r=$(i-1); if ($i=="warmup-s") u=$(i-1); if ($i=="engine-start-s") e=$(i-1); if ($i=="warmup-ratio") x=$(i-1)}; print w, c, s, r, u, e, x}' "$OUT/warmclass.txt")
	row warmclass "$BENCH_CLASS students, warmed, TTFB" "p99 ${w} ms, ${served} served" "p99 ${c} ms (cold, on demand)" "p99 $ratio (goal warm p99 ≤ 1 s)"
	row warmclass "warm-up of $BENCH_CLASS servers, two at a time" "${up} s" "${eng} s (engine create + start + wait, two at a time)" "$upratio (goal ≤ 1.1)"
fi

if bench workspace "$GO" run ./bench/workspace -notebooks 200 -rounds "$ROUNDS" -students "$STUDENTS"; then
	l=$(grep '^RESULT workspace' "$OUT/workspace.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row workspace "first visit, 200 notebooks" "$(get init)" "$(get cp) (cp -a)" "wall $(get init_ratio)"
	row workspace "merge after a push, $STUDENTS ws" "$(get update)" "$(get git) (git pull each)" "wall $(get update_ratio)"
fi

echo
printf '%-9s | %-30s | %-20s | %-36s | %s\n' bench "what" nbh-sync baseline ratio
printf '%s\n' "--------------------------------------------------------------------------------------------------------"
for r in "${rows[@]}"; do printf '%s\n' "$r"; done
echo
echo "full outputs: $OUT"
exit $failed
