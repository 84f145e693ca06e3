# Helpers of the CLI tests (sourced): they read $work and count failures in $failures.
# shellcheck shell=bash

# verdict WHAT WHY [LINES]: when WHY is set, counts a failure and prints it with the first LINES (5)
# lines of stderr, returning 1; else returns 0.
verdict() {
  [ -z "$2" ] && return 0
  failures=$((failures + 1))
  echo "FAIL: $1 -> $2"
  sed 's/^/  stderr: /' "$work/stderr" | head -"${3:-5}"
  return 1
}

# run EXPECTED_RC NEEDLE CMD...: runs CMD, checks its exit code, that stderr is one line holding
# NEEDLE (when EXPECTED_RC != 0) and that no signal ended it.
run() {
  local want=$1 needle=$2
  shift 2
  "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$? why=""
  if [ "$rc" -ne "$want" ]; then why="exit code $rc, expected $want"; fi
  if [ "$want" -ne 0 ]; then one_error_line "$needle" || why="$why; $message"; fi
  verdict "$*" "$why" && echo "ok:   $*"
}
usage() { run 2 "$@"; }

# one_error_line NEEDLE: stderr has exactly one error line ("<program>: error: " or "usage error: ")
# and it holds NEEDLE (other lines are progress reports); else sets message.
one_error_line() {
  local errors
  errors=$(grep -aE "^sasq-[a-z]+: (usage )?error: " "$work/stderr")
  if [ "$(grep -acE "^sasq-[a-z]+: (usage )?error: " "$work/stderr")" -ne 1 ]; then
    message="stderr does not have exactly one error line"
    return 1
  fi
  if ! grep -aqF -- "$1" <<<"$errors"; then
    message="the error line lacks '$1'"
    return 1
  fi
}

# limited BLOCKS CMD...: runs CMD with a file size limit of BLOCKS KiB (SIGXFSZ ignored, so writes
# fail with EFBIG), stdout discarded and stderr in $work/stderr; returns CMD's exit code.
limited() {
  local blocks=$1
  shift
  { bash -c 'trap "" XFSZ; ulimit -f "$0"; exec "$@"' "$blocks" "$@" 2>&1 >/dev/null; } | cat >"$work/stderr"
  return "${PIPESTATUS[0]}"
}

# expect_failed_write WHAT RC FILE ORIGINAL: the run failed with exit code 1 and one line naming FILE,
# FILE still equals ORIGINAL, and no temporary file is left next to it.
expect_failed_write() {
  local what=$1 rc=$2 file=$3 orig=$4 why=""
  [ "$rc" -eq 1 ] || why="exit code $rc, expected 1"
  one_error_line "$file" || why="$why; $message"
  cmp -s "$file" "$orig" || why="$why; $file was changed"
  ls "$file".tmp-* >/dev/null 2>&1 && why="$why; a temporary file was left behind"
  verdict "$what" "$why" && echo "ok:   $what"
}
