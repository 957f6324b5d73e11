#!/usr/bin/env bash
# Builds dist/coral-agent: one file that runs on a Linux host with nothing but
# glibc and libstdc++ (no Deno, no libbpf/libelf/zlib packages, no source tree).
#
#   bash build.sh            (or: deno task build)
#
# What goes inside:
#   - the BPF objects (ffi/bpf/build.sh → ffi/bpf/objects.gen.ts);
#   - a self-contained libbpf (ffi/libbpf/build_libbpf.sh →
#     ffi/libbpf/libbpf_so.gen.ts), extracted at run time to a private cache
#     directory and opened from there;
#   - the program, from an entry written here (dist/.build/entry.ts) that
#     hands those over before main.ts runs.
#
# Two kinds of executable, and version says which one you have
# ("coral-agent 0.1.0 (compiled build …)" or "(launcher build …)"):
#   compiled  `deno compile --self-extracting`: needs Deno's denort runtime,
#             from DENORT_BIN when set, else downloaded by deno from
#             dl.deno.land (what the release workflow does);
#   launcher  when no denort can be had (these build machines cannot reach
#             dl.deno.land): a shell launcher with a payload appended — the
#             Deno runtime, a `deno bundle` of the program and DuckDB's native
#             addon — unpacked once into the cache directory, then exec'd.
#
# Environment:
#   DENORT_BIN=/path/to/denort   compile with this denort
#   CORAL_BUILD_KIND=compile     fail instead of falling back to the launcher
#   CORAL_BUILD_KIND=launcher    make the launcher without trying denort
set -euo pipefail
cd "$(dirname "$0")"

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  "") ;;
  *)
    echo "build: unexpected argument \"$1\" (see bash build.sh --help)" >&2
    exit 2
    ;;
esac

log() { printf 'build: %s\n' "$*" >&2; }
need() {
  command -v "$1" >/dev/null || {
    log "$1 not found: $2"
    exit 1
  }
}
need deno "run bash setup.sh"
need tar "install tar"
need gzip "install gzip"
need sha256sum "install coreutils"

out=dist/coral-agent
work=dist/.build
kind_wanted=${CORAL_BUILD_KIND:-auto}
case "$kind_wanted" in
  auto | compile | launcher) ;;
  *)
    log "CORAL_BUILD_KIND=$kind_wanted: expected compile or launcher"
    exit 2
    ;;
esac

# The permissions the program runs with, in both kinds: --allow-all. What
# the agent uses, and why nothing narrower works:
#   ffi    libbpf and libc through Deno.dlopen; DuckDB's Node-API addon.
#          FFI runs native code with the process' rights, so any narrower
#          list would be a promise the program cannot keep anyway;
#   read   the config, /proc (discovery, libssl paths, /proc/self/status for
#          CapEff), /sys (BTF, tracefs), the DuckDB file, the cache directory.
#          Deno grants /proc/self/* and /sys/* only with --allow-all
#          ("NotCapable: Requires all access to /proc/self/status");
#   write  the DuckDB file (storage.path), the cache directory;
#   net    OTLP receivers, query API, forwarding to a colony, OTLP export;
#   env    the cache directory (CORAL_CACHE_DIR, CACHE_DIRECTORY,
#          XDG_CACHE_HOME, HOME); npm packages read NODE_* variables;
#   sys    the kernel release (capability probe), host name.
# What the agent may do on the host is bounded by the Linux capabilities it
# is given (examples/systemd/coral-agent.service), not by Deno's flags.
PERMISSIONS=(--allow-all)

log "installing dependencies"
deno install --quiet >&2
log "type-checking"
deno check --quiet main.ts >&2
log "building BPF objects"
bash ffi/bpf/build.sh
log "building the self-contained libbpf"
bash ffi/libbpf/build_libbpf.sh

# The commit, as hex (a tag name would hide which commit it is).
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo 0)
git diff --quiet HEAD 2>/dev/null || commit="$commit-dirty"
rm -rf "$work" "$out" "$out.sha256"
mkdir -p "$work"

write_entry() { # kind
  cat >"$work/entry.ts" <<ENTRY
// Written by build.sh: the built program's entry. Bundlers do not follow the
// computed imports that find the generated modules in a source checkout, so
// this file imports them and hands them over before main.ts runs.
import { BPF_OBJECTS } from "../../ffi/bpf/objects.gen.ts";
import { provideObjects } from "../../ffi/bpf/objects.ts";
import {
  LIBBPF_SO_BASE64,
  LIBBPF_SO_SHA256,
  LIBBPF_SO_VERSION,
} from "../../ffi/libbpf/libbpf_so.gen.ts";
import { provideLibbpf } from "../../ffi/libbpf/bundled_library.ts";
import { provideBuild } from "../../src/version.ts";

provideObjects(BPF_OBJECTS);
provideLibbpf({
  base64: LIBBPF_SO_BASE64,
  sha256: LIBBPF_SO_SHA256,
  version: LIBBPF_SO_VERSION,
});
provideBuild({ kind: "$1", commit: "$commit" });
await import("../../main.ts");
ENTRY
}

denort_reachable() {
  local target
  target=$(deno eval --quiet 'console.log(Deno.build.target)')
  command -v curl >/dev/null &&
    curl -sfI --max-time 10 \
      "https://dl.deno.land/release/v$(deno eval --quiet 'console.log(Deno.version.deno)')/denort-$target.zip" \
      >/dev/null
}

build_compiled() {
  write_entry compiled
  log "deno compile${DENORT_BIN:+ with DENORT_BIN=$DENORT_BIN}"
  deno compile --quiet --self-extracting --no-check "${PERMISSIONS[@]}" \
    --output "$out" "$work/entry.ts" >&2
}

# The launcher: a shell script with a gzip'd tar appended. It unpacks the
# payload once into <cache>/runtime-<payload sha256 prefix>/ (the cache
# directory the program itself uses for libbpf) and execs the bundled Deno.
build_launcher() {
  write_entry launcher
  local payload=$work/payload
  mkdir -p "$payload/node_modules/@duckdb"
  log "deno bundle"
  deno bundle --quiet --platform deno --external @duckdb/node-bindings \
    --output "$payload/coral-agent.js" "$work/entry.ts" >&2
  # DuckDB's addon cannot go inside a bundle: its package and the platform
  # package (duckdb.node + libduckdb.so, found through RUNPATH $ORIGIN)
  # sit beside it, where the bundle's require() finds them.
  cp -rL node_modules/@duckdb/node-bindings "$payload/node_modules/@duckdb/"
  local platform
  platform=$(deno eval --quiet \
    'console.log(`node-bindings-${Deno.build.os}-${Deno.build.arch === "x86_64" ? "x64" : "arm64"}`)')
  cp -rL "node_modules/@duckdb/node-bindings/node_modules/@duckdb/$platform" \
    "$payload/node_modules/@duckdb/" 2>/dev/null ||
    cp -rL node_modules/.deno/@duckdb+"$platform"@*/node_modules/@duckdb/"$platform" \
      "$payload/node_modules/@duckdb/"
  local duckdb_version
  duckdb_version=$(deno eval --quiet \
    "console.log(JSON.parse(Deno.readTextFileSync('$payload/node_modules/@duckdb/node-bindings/package.json')).version)")
  printf '{ "nodeModulesDir": "manual" }\n' >"$payload/deno.json"
  printf '{ "dependencies": { "@duckdb/node-bindings": "%s" } }\n' \
    "$duckdb_version" >"$payload/package.json"
  cp "$(command -v deno)" "$payload/deno"

  log "packing the payload"
  tar -C "$payload" --owner=0 --group=0 --numeric-owner --sort=name \
    -cf - . | gzip -6 >"$work/payload.tar.gz"
  local id
  id=$(sha256sum "$work/payload.tar.gz" | cut -c1-16)
  sed -e "s/@PAYLOAD_ID@/$id/" -e "s/@PERMISSIONS@/${PERMISSIONS[*]}/" \
    src/build/launcher.sh >"$work/header.template"
  # The header names its own length (where the payload starts).
  local length digits=1
  while :; do
    length=$(($(wc -c <"$work/header.template") - ${#HEADER_PLACEHOLDER} + digits))
    [ ${#length} -eq "$digits" ] && break
    digits=${#length}
  done
  sed "s/$HEADER_PLACEHOLDER/$length/" "$work/header.template" >"$work/header.sh"
  [ "$(wc -c <"$work/header.sh")" -eq "$length" ] || {
    log "launcher header: expected $length bytes"
    exit 1
  }
  cat "$work/header.sh" "$work/payload.tar.gz" >"$out"
  chmod 755 "$out"
}

HEADER_PLACEHOLDER=@HEADER_BYTES@
kind=launcher
if [ "$kind_wanted" != launcher ] && { [ -n "${DENORT_BIN:-}" ] || denort_reachable; }; then
  kind=compiled
  build_compiled
elif [ "$kind_wanted" = compile ]; then
  log "CORAL_BUILD_KIND=compile but no denort: set DENORT_BIN or let deno reach dl.deno.land"
  exit 1
else
  log "no denort (DENORT_BIN unset, dl.deno.land unreachable): making the launcher over a deno bundle and the Deno runtime"
  build_launcher
fi

(cd dist && sha256sum coral-agent >coral-agent.sha256)
log "checking the executable"
version=$("$out" version)
log "$version"
case "$version" in
  *"($kind build"*) ;;
  *)
    log "expected a $kind build, got: $version"
    exit 1
    ;;
esac
log "built $out ($kind, $(du -h "$out" | cut -f1)) and $out.sha256"
