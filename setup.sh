#!/usr/bin/env bash
# Installs everything coral-agent needs on a fresh Debian 12 machine, and
# nothing twice: Deno (from npm), the Debian packages the tests use, and the
# project's npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

DENO_VERSION=2.9.6
APT_PACKAGES=(curl ca-certificates clang-16 llvm-16 bpftool libbpf-dev libelf-dev zlib1g-dev python3 nginx wrk)

log() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v deno >/dev/null 2>&1 || [ "$(deno --version | head -n1 | cut -d' ' -f2)" != "$DENO_VERSION" ]; then
  log "installing deno $DENO_VERSION from npm"
  npm install -g --no-fund --no-audit "deno@$DENO_VERSION" >&2
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from apt"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

log "installing npm dependencies"
deno install --quiet >&2
# eBPF: libbpf reads tracepoint ids from tracefs; mounting needs root.
if [ ! -d /sys/kernel/tracing/events ] && [ "$(id -u)" = 0 ]; then
  log "mounting tracefs"
  mount -t tracefs nodev /sys/kernel/tracing || log "could not mount tracefs: eBPF tests will skip"
fi
log "building BPF objects"
bash ffi/bpf/build.sh

log "ready: $(deno --version | head -n1)"
