#!/usr/bin/env bash
# Builds nbhtest-jupyter:latest, a real Jupyter server image for nbh-sync's
# integration tests, without any container registry: the root file system is
# made by mmdebstrap from the machine's Debian mirror and imported into the
# engine with `docker import`.
#
# Usage: testimages/jupyter/build.sh [--force] [--gen 1|2]
#   Exits 0 at once when the image exists (unless --force).
#   --gen 1 (default): Debian bookworm, jupyter_server 1.23 and Notebook 6.4,
#           image nbhtest-jupyter:latest; `jupyter lab` (a shim: no
#           JupyterLab) runs Notebook 6.4's classic UI.
#   --gen 2: Debian trixie, jupyter_server 2.15 (python3-jupyter-server) and
#           nbclassic, with jupyter / jupyter-lab / jupyter-server shims
#           running `python3 -m jupyter[_server]` (Debian ships none of these
#           scripts; jupyter-lab lands on nbclassic's file browser), image
#           nbhtest-jupyter2:latest.
#   Needs root, a running Docker engine, and apt access to a Debian mirror.
#
# Environment:
#   NBH_JUPYTER_IMAGE   image reference to create (default nbhtest-jupyter:latest)
#   NBH_DEBIAN_SOURCES  a sources.list / deb822 .sources file to use instead of
#                       the host's Debian entries under /etc/apt
#   NBH_DEBIAN_SUITE    suite to bootstrap (default: the host's codename, else bookworm)
set -euo pipefail

force=0
gen=1
while (($#)); do
  case $1 in
    --force) force=1 ;;
    --gen) gen=${2:-}; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case $gen in
  1) image=${NBH_JUPYTER_IMAGE:-nbhtest-jupyter:latest} ;;
  2) image=${NBH_JUPYTER_IMAGE:-nbhtest-jupyter2:latest} ;;
  *) echo "build.sh: --gen is 1 or 2, not '$gen'" >&2; exit 2 ;;
esac

if ! command -v docker >/dev/null 2>&1; then
  echo "build.sh: the docker command-line client is needed (for docker import)" >&2
  exit 1
fi

if [[ $force == 0 ]] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "build.sh: $image exists (use --force to rebuild)"
  exit 0
fi

start=$(date +%s)
old_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)

# mmdebstrap --mode=root: without root it fails, but only after its set-up.
if [[ $EUID != 0 ]]; then
  echo "build.sh: run as root (mmdebstrap builds the root file system in root mode)" >&2
  exit 1
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "build.sh: mmdebstrap not found; installing it with apt-get"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }; then
    echo "build.sh: could not install mmdebstrap (see apt-get's errors above); install Debian's mmdebstrap package and run again" >&2
    exit 1
  fi
fi

# Use the mirror(s) this machine is configured with: they are the ones known
# to be reachable. Only Debian entries are kept (third-party repos such as
# cloud SDKs are neither needed nor necessarily reachable).
mirrors=()
if [[ -n ${NBH_DEBIAN_SOURCES:-} ]]; then
  mirrors+=("$NBH_DEBIAN_SOURCES")
else
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -s $f ]] || continue
    if grep -qE '^[^#]*(/debian(-security)?/?([[:space:]]|$))' "$f"; then
      mirrors+=("$f")
    fi
  done
fi
if ((${#mirrors[@]} == 0)); then
  echo "build.sh: no Debian entry under /etc/apt; using http://deb.debian.org/debian (set NBH_DEBIAN_SOURCES to a sources file to choose)"
fi
# The first Debian URI of the entries: the trixie list of --gen 2 is on it,
# and the mirror check below asks it.
uri=$(grep -hvE '^[[:space:]]*#' ${mirrors[@]+"${mirrors[@]}"} /dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 || true)
uri=${uri% }
# Entries whose mirror is not spelled .../debian (a local mirror) are not
# checked: the check would ask deb.debian.org, which may be unreachable.
check_mirror=1
if [[ -z $uri ]] && ((${#mirrors[@]} > 0)); then check_mirror=0; fi
uri=${uri:-http://deb.debian.org/debian}
suite=${NBH_DEBIAN_SUITE:-}
if [[ $gen == 2 ]]; then
  # The host's entries name its own suite: give trixie a list of its own,
  # on the host's first Debian mirror.
  suite=trixie
  mirrors=("deb ${uri%/} trixie main")
fi
if [[ -z $suite ]]; then
  suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  suite=${suite:-bookworm}
fi

# jupyter-server: `jupyter server` (ServerApp, the backend of JupyterLab, which
#   is what course images run); python3-ipykernel: it is not a dependency of
#   jupyter-server, and kernels need it;
# jupyter-notebook: `jupyter notebook` (classic NotebookApp 6.x, still common
#   in nbhosting images) so both servers' activity semantics can be checked;
# util-linux (setpriv), passwd (useradd), procps (ps): what
#   start-in-dir-as-uid.sh and debugging need;
# usr-is-merged + "usrmerge-" (apt's "not this one"): satisfies
#   init-system-helpers' "usrmerge | usr-is-merged" without usrmerge; the
#   essential stage still installs usrmerge and perl (~50 MB), which nothing
#   here needs, so a customize hook purges them.
packages=jupyter-server,python3-ipykernel,jupyter-notebook,util-linux,passwd,procps,usr-is-merged,usrmerge-
cmd='["jupyter", "server", "--ip=0.0.0.0", "--port=8888", "--no-browser"]'
if [[ $gen == 2 ]]; then
  packages=python3-jupyter-server,python3-ipykernel,python3-nbclassic,util-linux,passwd,procps
  cmd='["python3", "-m", "jupyter_server", "--ip=0.0.0.0", "--port=8888", "--no-browser"]'
fi

tmp=$(mktemp -d /tmp/nbhtest-jupyter-build.XXXXXX)
beat=
trap 'if [[ -n $beat ]]; then kill "$beat" 2>/dev/null; fi; rm -rf "$tmp"' EXIT

# A mirror that does not answer makes mmdebstrap fail only after minutes:
# ask it for the suite's Release file first, through apt's own downloader
# (it honours the machine's apt proxy settings, as mmdebstrap will).
if ((check_mirror)) && ! timeout 120 /usr/lib/apt/apt-helper download-file "${uri%/}/dists/$suite/Release" "$tmp/Release" >"$tmp/mirror-check.log" 2>&1; then
  cat "$tmp/mirror-check.log" >&2
  echo "build.sh: the Debian mirror ${uri%/} does not serve $suite (above): check the network, or set NBH_DEBIAN_SOURCES to a sources file of a mirror that answers" >&2
  exit 1
fi

# `jupyter lab` is what nbh-sync's default command runs, and neither image
# has JupyterLab: the shim puts a notebook UI behind that name, so that the
# default command lands a student on a file browser and not on the bare
# "Jupyter Server" page of a server with no UI.
mkdir "$tmp/shims"
if [[ $gen == 1 ]]; then
  # Notebook 6.4: its options are NotebookApp's; root_dir is notebook_dir.
  cat > "$tmp/shims/jupyter-lab" <<'SH'
#!/bin/sh
# `jupyter lab` with no JupyterLab: Notebook 6.4's classic UI, the
# --ServerApp.* options of nbh-sync's command spelled as NotebookApp's.
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    --ServerApp.root_dir=*) a=--NotebookApp.notebook_dir=${a#*=} ;;
    --ServerApp.*) a=--NotebookApp.${a#--ServerApp.} ;;
  esac
  set -- "$@" "$a"
done
exec jupyter notebook "$@"
SH
else
  # A default_url given twice is an error to traitlets: add it only when
  # the command does not say where to land (ui: lab or classic does).
  cat > "$tmp/shims/jupyter-lab" <<'SH'
#!/bin/sh
# `jupyter lab` with no JupyterLab: jupyter_server with nbclassic's UI,
# landing on its file browser unless the command says otherwise.
for a; do
  case $a in *default_url*) exec python3 -m jupyter_server "$@" ;; esac
done
exec python3 -m jupyter_server --ServerApp.default_url=/tree "$@"
SH
  printf '#!/bin/sh\nexec python3 -m jupyter_server "$@"\n' > "$tmp/shims/jupyter-server"
  # Debian ships jupyter_core without its `jupyter` command: `jupyter lab`
  # runs jupyter-lab through jupyter_core's dispatcher, as it does elsewhere.
  printf '#!/bin/sh\nexec python3 -m jupyter "$@"\n' > "$tmp/shims/jupyter"
fi
chmod 755 "$tmp"/shims/*
shims="cp -p '$tmp'/shims/* \"\$1/usr/local/bin/\""

# Purge what the essential stage installed and nothing here needs (perl of
# whichever version the suite has, usrmerge); only installed ones are named.
cat > "$tmp/slim.sh" <<'SH'
root=$1
pkgs=$(chroot "$root" dpkg-query -W -f='${Package} ${db:Status-Status}\n' |
  awk '$2 == "installed" && $1 ~ /^(perl|libperl5[.0-9]*|perl-modules-5[.0-9]*|libfile-find-rule-perl|libnumber-compare-perl|libtext-glob-perl)$/ {print $1}')
[ -z "$pkgs" ] || chroot "$root" apt-get -qq -y purge --autoremove $pkgs
! chroot "$root" dpkg -s usrmerge >/dev/null 2>&1 || chroot "$root" dpkg --purge usrmerge
SH

# On a terminal mmdebstrap draws progress bars; elsewhere (CI, a log) its
# stages, each one line ("I: downloading packages with apt..."), can be
# minutes apart: there a heartbeat says every 30 s which stage runs and
# for how long the build has.
run_mmdebstrap() {
  if [[ -t 2 ]]; then
    mmdebstrap "$@"
    return
  fi
  echo "starting" > "$tmp/stage"
  (
    # Killed, the heartbeat takes its sleep along: a sleep left over would
    # hold the output (a CI step's log) open until it ends.
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while true; do
      sleep 30 &
      nap=$!
      wait "$nap"
      el=$(($(date +%s) - start))
      echo "build.sh: $((el / 60))m$((el % 60))s so far; mmdebstrap: $(cat "$tmp/stage")" >&2
    done
  ) &
  beat=$!
  local rc=0
  mmdebstrap "$@" 2>&1 | while IFS= read -r line; do
    printf '%s\n' "$line" >&2
    if [[ $line == I:* ]]; then printf '%s\n' "${line#I: }" > "$tmp/stage"; fi
  done || rc=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  beat=
  return "$rc"
}

echo "build.sh: building $image from Debian $suite with mmdebstrap (5 to 6 minutes on a fresh machine)"
run_mmdebstrap --mode=root --variant=apt --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/bin/gdb*' \
  --dpkgopt='path-exclude=/usr/share/gdb/*' \
  --dpkgopt='path-exclude=/usr/lib/python3/dist-packages/*-stubs/*' \
  --dpkgopt='path-exclude=/usr/lib/python3/dist-packages/jedi/third_party/django-stubs/*' \
  --dpkgopt='path-exclude=/usr/share/javascript/mathjax/unpacked/*' \
  --dpkgopt='path-exclude=/usr/share/zoneinfo/right/*' \
  --customize-hook='chroot "$1" useradd --create-home --uid 1000 --shell /bin/bash jovyan' \
  --customize-hook="sh '$tmp/slim.sh' \"\$1\"" \
  --customize-hook="$shims" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/*' \
  "$suite" "$tmp/rootfs.tar" ${mirrors[@]+"${mirrors[@]}"}

# Files excluded above (dpkg path-exclude keeps the package database
# consistent): the gdb binary (pulled in by ipykernel's debugger), which
# nothing uses. MathJax (~45 MB) stays: the notebook UI renders math with
# it, and without it greets every notebook with "Failed to retrieve MathJax".
# Compiled __pycache__ files are kept: without them every start recompiles.
#
# The file count matters as much as the size: on Docker's fuse-overlayfs
# storage driver (this CI's) every committed build step, a LABEL or USER as
# much as a COPY, walks the image's whole tree through FUSE to find what
# changed (the driver has no diff of its own). Hence out too, all unused at
# run time: the stubs of libraries the image does not have (typeshed's
# *-stubs, jedi's django stubs; the standard library's stay, for
# completion), MathJax's unminified copy (the UI loads the packed one) and
# the leap-second time zones: a quarter of gen 2's files (28,547 to
# 21,369) and a seventh of gen 1's (21,917 to 18,681). (Python's own test
# package stays: its postinst compiles it.)
#
# The image runs as root by default, as the product's lint requires of course
# images; tests choose the user (jovyan, uid 1000) when they run it.
echo "build.sh: importing the root file system into the engine as $image"
docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'WORKDIR /home/jovyan' \
  --change 'EXPOSE 8888' \
  --change "CMD $cmd" \
  --change "LABEL org.nbhosting.test-image=jupyter$gen" \
  "$tmp/rootfs.tar" "$image" >/dev/null

# A forced rebuild leaves the previous image untagged: drop it unless a
# container still uses it.
new_id=$(docker image inspect --format '{{.Id}}' "$image")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  docker image rm "$old_id" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$image")
echo "build.sh: built $image in $(( $(date +%s) - start ))s, $(( size / 1024 / 1024 )) MiB"
