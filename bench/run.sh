#!/usr/bin/env bash
# bench/run.sh — every benchmark of bench/README.md in sequence, then a
# summary table of the ratios (nbh-sync / baseline; lower is better).
# This is what `make bench` runs. Sizes come from the environment:
#
#   BENCH_REPOS=100        bench/gitpoll: course repos polled
#   BENCH_ROUNDS=3         bench/gitpoll, bench/pass: timed rounds
#   BENCH_SPAWN=10         bench/spawn: iterations (-benchtime Nx)
#   BENCH_CONTAINERS=1000  bench/pass, bench/memory: containers (CI: 100)
#   BENCH_RUNNING=50       bench/pass: of which running fake Jupyter servers
#   BENCH_COURSES=100      bench/memory: courses
#   BENCH_SERVERS=1000     bench/probe: running servers probed per round
#   BENCH_ENGINE=10        bench/probe: real containers for the engine CPU reads (0: skip)
#   BENCH_WEBSOCKETS=1000  bench/frontdoor: idle websockets held open
#   BENCH_CLASS=100        bench/frontdoor class: students starting at once
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
ONLY=${BENCH_ONLY:-gitpoll spawn build pass probe memory frontdoor class}
REPOS=${BENCH_REPOS:-100} ROUNDS=${BENCH_ROUNDS:-3} SPAWN=${BENCH_SPAWN:-10}
CONTAINERS=${BENCH_CONTAINERS:-1000} RUNNING=${BENCH_RUNNING:-50} COURSES=${BENCH_COURSES:-100}
SERVERS=${BENCH_SERVERS:-1000} ENGINE=${BENCH_ENGINE:-10}
WEBSOCKETS=${BENCH_WEBSOCKETS:-1000}
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

if bench gitpoll "$GO" run ./bench/gitpoll -repos "$REPOS" -rounds "$ROUNDS"; then
	f=$OUT/gitpoll.txt
	nbh=$(awk '/^gitwatch Mirrors.Update/ {print $NF}' "$f")
	base=$(awk '/^git fetch/ {print $NF}' "$f")
	ratio=$(sed -n 's/^ratio gitwatch\/git: CPU \([0-9.]*\), wall \([0-9.]*\).*/CPU \1, wall \2/p' "$f")
	row gitpoll "no-change poll, $REPOS repos" "$nbh /poll" "$base /poll (git fetch)" "$ratio"
fi

if bench spawn "$GO" test -run XXX -bench SpawnVsDockerRun -benchtime "${SPAWN}x" -count 1 ./bench/spawn/; then
	read -r nbh base ratio < <(awk '/^BenchmarkSpawnVsDockerRun/ {for (i=1;i<=NF;i++) {if ($i=="spawn-ms/op") s=$(i-1); if ($i=="dockerrun-ms/op") d=$(i-1); if ($i=="ratio") r=$(i-1)}; print s, d, r}' "$OUT/spawn.txt")
	row spawn "new student, ${SPAWN}x" "${nbh} ms" "${base} ms (docker run -d)" "wall $ratio"
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

if bench pass "$GO" run ./bench/pass -n "$CONTAINERS" -running "$RUNNING" -rounds "$ROUNDS"; then
	l=$(grep '^RESULT pass' "$OUT/pass.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row pass "observe+plan, $CONTAINERS ctrs" "$(get nbh), $(get calls) calls" "$(get baseline), $(get baseline_calls) calls (ps+inspect)" "wall $(get ratio)"
	one=$(grep '^RESULT apply concurrency=1 ' "$OUT/pass.txt")
	conc=$(grep '^RESULT apply concurrency=' "$OUT/pass.txt" | grep -v 'concurrency=1 ')
	if [ -n "$one" ] && [ -n "$conc" ]; then
		l=$conc; n=$(get concurrency); w=$(get wall); r=$(get retired)
		l=$one; row pass "apply, $r retirements" "$w (concurrency $n)" "$(get wall) (one at a time)" "$(sed -n 's/^ratio concurrency [0-9]* \/ 1: \(.*\)/\1/p' "$OUT/pass.txt")"
	fi
fi

if bench probe "$GO" run ./bench/probe -n "$SERVERS" -rounds "$ROUNDS" -engine "$ENGINE"; then
	l=$(grep '^RESULT probe' "$OUT/probe.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row probe "probe round, $SERVERS servers" "$(get cpu) (+CPU, memory)" "$(get today) (HTTP only)" "wall $(get ratio); via engine $(get engine_ratio)"
fi

if bench memory "$GO" run ./bench/memory -courses "$COURSES" -containers "$CONTAINERS"; then
	l=$(grep '^RESULT memory' "$OUT/memory.txt")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row memory "daemon, $COURSES courses, $CONTAINERS ctrs" "$(get rss_kb) kB RSS" "$(get floor_kb) kB (sleep)" "x$(get ratio) of the floor"
fi

if bench frontdoor "$GO" run ./bench/frontdoor -websockets "$WEBSOCKETS" -rounds "$ROUNDS"; then
	f=$OUT/frontdoor.txt
	l=$(grep '^RESULT frontdoor' "$f")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$l"; }
	row frontdoor "small request, fake server" "+$(get added_p50) p50" "direct" "p50 $(get p50_ratio), p99 $(get p99_ratio)"
	if [ "$(get jupyter_p50_ratio)" != "0.00" ]; then
		row frontdoor "real Jupyter api/status" "" "direct" "p50 $(get jupyter_p50_ratio), p99 $(get jupyter_p99_ratio)"
	fi
	row frontdoor "websocket round trip" "" "direct" "p50 $(get ws_p50_ratio), p99 $(get ws_p99_ratio)"
	row frontdoor "100 MB download" "" "direct" "throughput x$(get tput_ratio)"
	row frontdoor "$(get websockets) idle websockets" "$(get rss_ws_kb) kB RSS" "$(get rss_idle_kb) kB (proxy, none open)" "$(get per_ws_kb) kB each"
fi

if bench class "$GO" test -run XXX -bench ClassStart -benchtime 1x -count 1 ./bench/frontdoor/; then
	read -r fd dr served ratio < <(awk '/^BenchmarkClassStart/ {for (i=1;i<=NF;i++) {if ($i=="frontdoor-p99-ms") f=$(i-1); if ($i=="dockerrun-p99-ms") d=$(i-1); if ($i=="served") s=$(i-1); if ($i=="p99-ratio") r=$(i-1)}; print f, d, s, r}' "$OUT/class.txt")
	row class "$BENCH_CLASS students at once, TTFB" "p99 ${fd} ms, ${served} served" "p99 ${dr} ms (docker run -d + wait)" "p99 $ratio"
fi

echo
printf '%-9s | %-30s | %-20s | %-36s | %s\n' bench "what" nbh-sync baseline ratio
printf '%s\n' "--------------------------------------------------------------------------------------------------------"
for r in "${rows[@]}"; do printf '%s\n' "$r"; done
echo
echo "full outputs: $OUT"
exit $failed
