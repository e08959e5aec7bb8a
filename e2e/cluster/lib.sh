# shellcheck shell=bash
# Shell functions for the local-cluster scripts (bash; source it). Processes are tracked by
# pid files; waiting polls with a deadline instead of sleeping a fixed time.

# alive PID: the process exists and has not exited. An exited process stays a zombie until
# its parent reaps it, so ask ps rather than `kill -0`.
alive() {
  local stat
  stat=$(ps -o stat= -p "$1") && [[ $stat != Z* ]]
}

# exited PID: the opposite of alive.
exited() { ! alive "$1"; }

# ours FILE: the process in pid FILE is alive and started before FILE was written, so it is
# not an unrelated process that got the same pid after a reboot.
ours() {
  local stat etimes
  [ -s "$1" ] || return 1
  read -r stat etimes < <(ps -o stat=,etimes= -p "$(cat "$1")") || return 1
  [[ $stat != Z* ]] && (($(date +%s) - etimes <= $(stat -c %Y "$1") + 1))
}

# eventually SECONDS CMD...: runs CMD (output discarded) every half second until it
# succeeds; fails once SECONDS have passed.
eventually() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# stop NAME FILE: if the process in pid FILE is ours, sends it TERM, gives it 10 s to exit
# cleanly (etcd flushes), then kills it. Fails if there was nothing to stop.
stop() {
  local pid
  ours "$2" || return 1
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || return 1
  eventually 10 exited "$pid" && return
  echo "$1 (pid $pid) did not stop; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}
