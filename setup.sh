#!/usr/bin/env bash
# Installs everything coral-agent needs on a fresh Debian 12 machine, and
# nothing twice: Deno (from npm), the Debian packages the tests use, and the
# project's npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

DENO_VERSION=2.9.6
APT_PACKAGES=(curl ca-certificates clang-16 llvm-16 bpftool libbpf-dev libelf-dev zlib1g-dev python3 nginx wrk
  openssl postgresql postgresql-contrib mariadb-server mariadb-client redis-server redis-tools prometheus
  dpkg-dev gcc make binutils bzip2 xz-utils strace util-linux)
# ffi/libbpf/build_libbpf.sh builds libbpf, libelf and zlib from Debian's
# source packages (apt-get source): that needs deb-src entries.
DEB_SRC_LIST=/etc/apt/sources.list.d/coral-agent-deb-src.sources
# Started by their packages on install; the tests run private instances
# (tests/support/db_servers.ts, tests/prometheus_test.ts), so these only hold
# ports and memory (prometheus-node-exporter comes as a recommendation).
DISTRO_SERVICES=(postgresql mariadb redis-server prometheus prometheus-node-exporter)

log() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v deno >/dev/null 2>&1 || [ "$(deno --version | head -n1 | cut -d' ' -f2)" != "$DENO_VERSION" ]; then
  log "installing deno $DENO_VERSION from npm"
  npm install -g --no-fund --no-audit "deno@$DENO_VERSION" >&2
fi

apt_update_needed=false
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    log "adding deb-src entries for Debian's sources ($DEB_SRC_LIST)"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$DEB_SRC_LIST"
  elif grep -qs '^deb ' /etc/apt/sources.list; then
    log "adding deb-src entries for Debian's sources (/etc/apt/sources.list.d/coral-agent-deb-src.list)"
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/coral-agent-deb-src.list
  else
    log "no Debian apt sources found: ffi/libbpf/build_libbpf.sh will not find its sources"
  fi
  apt_update_needed=true
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] || $apt_update_needed; then
  apt-get update -qq >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# Stop and disable the distro's database services: with systemd if it runs
# (not in most containers), else with their init scripts.
for svc in "${DISTRO_SERVICES[@]}"; do
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet "$svc" || systemctl is-enabled --quiet "$svc" 2>/dev/null; then
      log "stopping and disabling the $svc service"
      systemctl disable --now --quiet "$svc" >&2 || log "could not stop $svc"
    fi
  elif [ -x "/etc/init.d/$svc" ] && service "$svc" status >/dev/null 2>&1; then
    log "stopping and disabling the $svc service"
    service "$svc" stop >&2 || log "could not stop $svc"
    if command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
  fi
done

log "installing npm dependencies"
deno install --quiet >&2
# eBPF: libbpf reads tracepoint ids from tracefs; mounting needs root.
if [ ! -d /sys/kernel/tracing/events ] && [ "$(id -u)" = 0 ]; then
  log "mounting tracefs"
  mount -t tracefs nodev /sys/kernel/tracing || log "could not mount tracefs: eBPF tests will skip"
fi
log "building BPF objects"
bash ffi/bpf/build.sh
log "building the self-contained libbpf (first time: about a minute)"
bash ffi/libbpf/build_libbpf.sh

log "ready: $(deno --version | head -n1)"
