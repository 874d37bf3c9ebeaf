#!/usr/bin/env bash
# check-fresh.sh: proves the README's two commands work on a machine that has only a base
# Debian 12 system (issue 11).
#
# What it does: builds a minimal Debian 12 root (debootstrap --variant=minbase bookworm), puts
# the committed tree of this repository in it (git archive HEAD: what a fresh clone has) at the
# same path as here (e.g. ROOT/work/main), bind-mounts ../shared read-only next to it (the test
# suite reads ../shared/data), mounts /proc, /sys, /dev, /dev/pts and a fresh /dev/shm, then runs
# inside `chroot`, as root, from the repo:
#     bash scripts/demo.sh > demo.out 2> demo.err
#     bash scripts/test.sh > test.out 2>&1
# and prints a report: exit code, wall seconds and the end of the output of each, PASS/FAIL.
# Everything it mounted is unmounted on exit (also on Ctrl-C / kill), and the root is removed
# (unless --keep) only after `findmnt` shows nothing mounted under it any more. The outputs are
# copied to a results directory that is kept.
#
# How long: about 15 min on 2 shared CPUs, up to 30 on a busy host (measured: debootstrap 74 s,
# demo.sh 288 s with its apt installs and the flowpicd build, test.sh 496 s building the rest and
# running the 21 tests).
# What it needs: root on a Debian 12 host (it installs debootstrap with apt-get if missing),
# network access to the Debian mirror (deb.debian.org), about 4 GiB free where the root goes
# (default under /var/tmp), and git (to export HEAD). Exit status 0 only if both commands pass.
set -euo pipefail

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
NEED_KIB=$((4 * 1024 * 1024))      # minbase ~0.3 GB + packages ~1.5 GB + apt cache + builds
ROOT=""
RESULTS=""
KEEP=0
CMD_TIMEOUT=7200                  # per command, seconds

usage() {
  cat <<EOF
Usage: sudo bash scripts/check-fresh.sh [options]

Runs the README's two commands (bash scripts/demo.sh, bash scripts/test.sh) in a fresh minimal
Debian 12 root made with debootstrap, and reports whether each one passed. Takes 15-30 min.

Options:
  --dir DIR       where to build the root (must not exist, or be empty);
                  default: a new mktemp directory /var/tmp/flowpic-fresh.XXXXXX
  --results DIR   where to copy demo.out, demo.err, test.out and the build logs;
                  default: a new mktemp directory /var/tmp/flowpic-fresh-results.XXXXXX
  --keep          keep the root afterwards (everything is still unmounted)
  --mirror URL    Debian mirror for debootstrap (default: $MIRROR)
  --timeout SECS  time limit for each of the two commands (default: $CMD_TIMEOUT)
  -h, --help      this help

Exit status: 0 if both commands passed, 1 if either failed, 2 on a set-up error.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) ROOT="${2:?--dir needs a directory}"; shift 2 ;;
    --results) RESULTS="${2:?--results needs a directory}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --mirror) MIRROR="${2:?--mirror needs a URL}"; shift 2 ;;
    --timeout) CMD_TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check-fresh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "check-fresh: $*" >&2; }
die() { say "$*"; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mount and chroot need it): sudo bash $0"
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
SHARED="$(dirname "$REPO")/shared"
command -v git >/dev/null || die "git is needed to export the committed tree (apt-get install git)"
git -C "$REPO" rev-parse --verify -q HEAD >/dev/null || die "$REPO is not a git repository with a commit"
[ -d "$SHARED" ] || say "warning: $SHARED does not exist: the tests that read ../shared/data will skip or fail"

# ---- the root directory: only ever one we created or that was empty --------------------------
if [ -z "$ROOT" ]; then
  ROOT=$(mktemp -d /var/tmp/flowpic-fresh.XXXXXX)
else
  if [ -e "$ROOT" ]; then
    if [ ! -d "$ROOT" ] || [ -n "$(ls -A "$ROOT")" ]; then
      die "--dir $ROOT exists and is not an empty directory"
    fi
  else
    mkdir -p "$ROOT"
  fi
fi
ROOT=$(cd "$ROOT" && pwd -P)
chmod 755 "$ROOT"   # it is the root's "/": mktemp's 0700 would lock apt's _apt user out of it
case "$ROOT" in /|/bin|/boot|/dev|/etc|/home|/lib*|/proc|/root|/run|/sbin|/sys|/tmp|/usr|/var|/var/tmp|/work*)
  die "refusing to use $ROOT as the root directory" ;;
esac
[ -n "$RESULTS" ] || RESULTS=$(mktemp -d /var/tmp/flowpic-fresh-results.XXXXXX)
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd -P)

# ---- mounts and cleanup ----------------------------------------------------------------------
MOUNTED=()      # targets, in mount order; unmounted in reverse

# Mount targets at or under $ROOT, deepest first (findmnt -r escapes blanks as \x20; the root's
# path has none: mktemp or a path we checked).
mounts_under_root() {
  findmnt -rn -o TARGET | awk -v r="$ROOT" '$0 == r || index($0, r "/") == 1' | sort -r
}

# Processes whose root directory is inside $ROOT: all started by this script (chroot, demo, tests).
procs_in_root() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$ROOT"|"$ROOT"/*) echo "${p#/proc/}" ;; esac
  done
}

kill_procs_in_root() {
  local pids sig
  for sig in TERM KILL; do
    pids=$(procs_in_root)
    [ -n "$pids" ] || return 0
    say "stopping processes still running inside the root (SIG$sig): ${pids//$'\n'/ }"
    # shellcheck disable=SC2086
    kill -s "$sig" $pids 2>/dev/null || true
    sleep 3
  done
}

do_umount() {   # do_umount TARGET: unmount; if busy, stop the root's processes and retry; last, detach
  local t=$1
  findmnt -rn --mountpoint "$t" >/dev/null 2>&1 || return 0
  umount "$t" 2>/dev/null && return 0
  kill_procs_in_root
  umount "$t" 2>/dev/null && return 0
  sleep 2
  umount "$t" 2>/dev/null && return 0
  say "warning: $t is busy; detaching it (umount -l)"
  umount -l "$t"
}

# Long steps run in the background in their own process group (setsid), so that a signal to
# this script is handled at once (bash runs traps only after a foreground child ends).
BG_PID=""
# (Redirect inside, not around the call: a trap that runs during the wait keeps the call's
# redirections, and its messages belong on stderr.)
run_bg() {      # run_bg LOG CMD...: runs CMD with output to LOG ("-": none), waits, returns its status
  local rc=0 log=$1; shift
  if [ "$log" = - ]; then
    setsid "$@" < /dev/null &
  else
    setsid "$@" < /dev/null > "$log" 2>&1 &
  fi
  BG_PID=$!
  wait "$BG_PID" || rc=$?
  BG_PID=""
  return "$rc"
}

stop_bg() {     # stops the process group of the running background step, if any
  [ -n "$BG_PID" ] || return 0
  say "stopping the running step (process group $BG_PID)"
  kill -TERM -- "-$BG_PID" 2>/dev/null || true
  sleep 3
  kill -KILL -- "-$BG_PID" 2>/dev/null || true
  BG_PID=""
}

CLEANED=0
cleanup() {
  local rc=$? i t left
  [ "$CLEANED" -eq 0 ] || return 0
  CLEANED=1
  trap '' INT TERM HUP
  set +e
  stop_bg
  kill_procs_in_root
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    do_umount "${MOUNTED[$i]}"
  done
  # Anything else under the root (e.g. /proc or /sys left by an interrupted debootstrap).
  for t in $(mounts_under_root); do do_umount "$t"; done
  left=$(mounts_under_root)
  if [ -n "$left" ]; then
    say "ERROR: still mounted under $ROOT, NOT removing it:"
    echo "$left" >&2
    say "unmount these (umount PATH), then: rm -rf --one-file-system $ROOT"
    [ "$rc" -ne 0 ] || rc=2
  elif [ "$KEEP" -eq 1 ]; then
    say "kept the root (nothing mounted in it): $ROOT"
  elif [ -d "$ROOT" ]; then
    say "removing $ROOT"
    rm -rf --one-file-system "$ROOT"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM
trap 'say "hangup"; exit 129' HUP

do_mount() {    # do_mount TARGET mount-args...: mount, record, and keep events from leaking out
  local t=$1; shift
  mkdir -p "$t"
  mount "$@" "$t"
  MOUNTED+=("$t")
  mount --make-rprivate "$t"
}

# ---- 1. space, debootstrap, the minimal root --------------------------------------------------
avail_kib=$(df -Pk "$ROOT" | awk 'NR == 2 { print $4 }')
say "root: $ROOT ($((avail_kib / 1024)) MiB free there; results go to $RESULTS)"
if [ "$avail_kib" -lt "$NEED_KIB" ]; then
  die "not enough space: $((avail_kib / 1024)) MiB free under $(dirname "$ROOT"), need about $((NEED_KIB / 1024)) MiB; use --dir on a bigger filesystem"
fi

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on the host"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  } || die "could not install debootstrap"
fi

say "debootstrap --variant=minbase $SUITE into $ROOT (log: $RESULTS/debootstrap.log)"
t0=$(date +%s)
if ! run_bg "$RESULTS/debootstrap.log" debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"; then
  tail -n 20 "$RESULTS/debootstrap.log" >&2
  die "debootstrap failed (log: $RESULTS/debootstrap.log)"
fi
T_DEBOOTSTRAP=$(( $(date +%s) - t0 ))
say "debootstrap done in ${T_DEBOOTSTRAP} s"

# ---- 2. the repository (committed files only) and ../shared ----------------------------------
HEAD=$(git -C "$REPO" rev-parse --short HEAD)
say "exporting $REPO at HEAD $HEAD into the root at $REPO"
mkdir -p "$ROOT$REPO"
git -C "$REPO" archive --format=tar HEAD | tar -x -C "$ROOT$REPO"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  say "note: $REPO has uncommitted changes; they are NOT in the root (only HEAD is, as in a clone)"
fi

# ---- 3. mounts, DNS ----------------------------------------------------------------------------
do_mount "$ROOT/proc" -t proc proc
do_mount "$ROOT/sys" -t sysfs sysfs
do_mount "$ROOT/dev" --bind /dev
do_mount "$ROOT/dev/pts" --bind /dev/pts
do_mount "$ROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev shm   # its own: no DPDK files shared with the host
# /run stays the root's own directory (DPDK's runtime dir /var/run/dpdk is then private to it).
if [ -d "$SHARED" ]; then
  do_mount "$ROOT$SHARED" --bind "$SHARED"
  mount -o remount,bind,ro "$ROOT$SHARED"
  findmnt -rn -o OPTIONS --mountpoint "$ROOT$SHARED" | grep -qE '(^|,)ro(,|$)' ||
    die "could not make $ROOT$SHARED read-only"
  say "bind-mounted $SHARED read-only at $ROOT$SHARED"
fi
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# run_in_root NAME SCRIPT: runs SCRIPT with bash inside the root, with a clean login-like
# environment; sets RC_<NAME> and T_<NAME> (wall seconds).
run_in_root() {
  local name=$1 script=$2 t0 rc=0
  say "running in the root: $script"
  t0=$(date +%s)
  run_bg - timeout -k 30 "$CMD_TIMEOUT" chroot "$ROOT" /usr/bin/env -i HOME=/root USER=root LOGNAME=root \
    TERM="${TERM:-dumb}" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "$script" || rc=$?
  t0=$(( $(date +%s) - t0 ))
  printf -v "RC_$name" '%s' "$rc"
  printf -v "T_$name" '%s' "$t0"
  say "$name: exit $rc after $t0 s"
  kill_procs_in_root     # nothing should outlive the command
}

# ---- run the README's two commands -----------------------------------------------------------
run_in_root DEMO "cd '$REPO' && bash scripts/demo.sh > demo.out 2> demo.err"
run_in_root TEST "cd '$REPO' && bash scripts/test.sh > test.out 2>&1"

# Keep the outputs and the logs.
for f in demo.out demo.err test.out; do
  cp "$ROOT$REPO/$f" "$RESULTS/" 2>/dev/null || true
done
for d in setup-logs meson-logs; do
  if [ -d "$ROOT$REPO/build/$d" ]; then cp -r "$ROOT$REPO/build/$d" "$RESULTS/"; fi
done

# ---- 4. report ---------------------------------------------------------------------------------
json_lines=$(grep -c '^{' "$RESULTS/demo.out" 2>/dev/null || true); json_lines=${json_lines:-0}
out_lines=$(wc -l < "$RESULTS/demo.out" 2>/dev/null || echo 0)
summary_line=$(grep -n '^==== flowpicd summary' "$RESULTS/demo.err" 2>/dev/null | tail -n 1 | cut -d: -f1 || true)
tests_line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$RESULTS/test.out" 2>/dev/null | tail -n 1 || true)

DEMO_OK=FAIL
[ "$RC_DEMO" -eq 0 ] && [ "${json_lines:-0}" -gt 0 ] && [ -n "$summary_line" ] && DEMO_OK=PASS
TEST_OK=FAIL
[ "$RC_TEST" -eq 0 ] && [[ "$tests_line" =~ \ 0\ failed ]] && TEST_OK=PASS

{
  echo "==== check-fresh report: $REPO at $HEAD in a fresh Debian 12 ($SUITE, minbase) root ===="
  echo "debootstrap: ${T_DEBOOTSTRAP} s"
  echo
  echo "---- bash scripts/demo.sh: $DEMO_OK (exit $RC_DEMO, ${T_DEMO} s wall)"
  echo "stdout: $out_lines lines, $json_lines JSON verdict lines"
  echo "stderr, last 15 lines:"
  tail -n 15 "$RESULTS/demo.err" 2>/dev/null | sed 's/^/  | /'
  if [ -n "$summary_line" ] && [ "$(( $(wc -l < "$RESULTS/demo.err") - summary_line + 1 ))" -gt 15 ]; then
    echo "stderr, summary block:"
    tail -n +"$summary_line" "$RESULTS/demo.err" | sed 's/^/  | /'
  fi
  [ -n "$summary_line" ] || echo "(no '==== flowpicd summary' block on stderr)"
  echo
  echo "---- bash scripts/test.sh: $TEST_OK (exit $RC_TEST, ${T_TEST} s wall)"
  echo "output, last 15 lines:"
  tail -n 15 "$RESULTS/test.out" 2>/dev/null | sed 's/^/  | /'
  echo "closing line: ${tests_line:-(none)}"
  echo
  echo "outputs and logs kept in $RESULTS"
  if [ "$DEMO_OK" = PASS ] && [ "$TEST_OK" = PASS ]; then
    echo "OVERALL: PASS"
  else
    echo "OVERALL: FAIL"
  fi
} | tee "$RESULTS/report.txt"

[ "$DEMO_OK" = PASS ] && [ "$TEST_OK" = PASS ]
