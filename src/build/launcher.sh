#!/bin/sh
# coral-agent launcher (made by build.sh): this script, then a gzip'd tar of
# the Deno runtime, the bundled program and DuckDB's native addon. The first
# run unpacks it into the cache directory; every run then execs the bundled
# Deno on the bundled program, so signals reach the program itself.
#
# Cache directory, first that is set: CORAL_CACHE_DIR, CACHE_DIRECTORY
# (systemd's CacheDirectory=), XDG_CACHE_HOME/coral-agent,
# HOME/.cache/coral-agent, /tmp/coral-agent-UID. It must belong to the user
# and not be writable by others.
set -eu
payload_id=@PAYLOAD_ID@
header_bytes=@HEADER_BYTES@

fail() {
  echo "coral-agent: $*" >&2
  exit 1
}

uid=$(id -u)
if [ -n "${CORAL_CACHE_DIR:-}" ]; then
  cache=$CORAL_CACHE_DIR
elif [ -n "${CACHE_DIRECTORY:-}" ]; then
  cache=${CACHE_DIRECTORY%%:*}
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache=$XDG_CACHE_HOME/coral-agent
elif [ -n "${HOME:-}" ] && [ "$HOME" != / ]; then
  cache=$HOME/.cache/coral-agent
else
  cache=/tmp/coral-agent-$uid
fi
[ -L "$cache" ] && fail "cache directory $cache is a symbolic link; set CORAL_CACHE_DIR"
if [ ! -d "$cache" ]; then
  (umask 077 && mkdir -p "$cache") || fail "cannot create cache directory $cache; set CORAL_CACHE_DIR"
fi
owner=$(stat -c %u "$cache")
[ "$owner" = "$uid" ] || fail "cache directory $cache belongs to uid $owner, not $uid; set CORAL_CACHE_DIR"
case $(stat -c %A "$cache") in
  ?????w???? | ????????w?) fail "cache directory $cache is writable by others; chmod go-w it or set CORAL_CACHE_DIR" ;;
esac
export CORAL_CACHE_DIR="$cache"

runtime=$cache/runtime-$payload_id
if [ ! -f "$runtime/.complete" ]; then
  self=$0
  [ -r "$self" ] || fail "cannot read $self to unpack the runtime"
  echo "coral-agent: first run of this build: unpacking the runtime into $runtime" >&2
  sum=$(tail -c +$((header_bytes + 1)) "$self" | sha256sum | cut -c1-16)
  [ "$sum" = "$payload_id" ] ||
    fail "$self is damaged (payload checksum $sum, expected $payload_id): download it again"
  staging=$(mktemp -d "$cache/.unpacking-XXXXXX")
  trap 'rm -rf "$staging"' EXIT INT TERM
  tail -c +$((header_bytes + 1)) "$self" | tar -xzf - -C "$staging" ||
    fail "cannot unpack the runtime into $staging (disk full?)"
  : >"$staging/.complete"
  # Two first runs at once: the first rename wins, the other copy goes.
  mv -T "$staging" "$runtime" 2>/dev/null || rm -rf "$staging"
  trap - EXIT INT TERM
  # Runtimes of other builds are not needed any more.
  for old in "$cache"/runtime-*; do
    [ "$old" = "$runtime" ] || rm -rf "$old"
  done
fi

export DENO_DIR="$runtime/.deno"
export DENO_NO_UPDATE_CHECK=1
exec "$runtime/deno" run --quiet --cached-only --no-prompt --no-lock \
  --config "$runtime/deno.json" @PERMISSIONS@ "$runtime/coral-agent.js" "$@"
