#!/usr/bin/env bash
# Builds dist/coral-agent/: a self-contained directory with the Deno runtime,
# the program and its npm dependencies (DuckDB's native addon included), run
# through the `coral-agent` launcher, plus dist/coral-agent.tar.gz.
#
# `deno compile` needs `denort` from dl.deno.land, which these machines cannot
# reach; when DENORT_BIN points at a denort binary, build.sh also makes the
# single executable dist/coral-agent-bin with it.
set -euo pipefail
cd "$(dirname "$0")"

out=dist/coral-agent
log() { printf 'build: %s\n' "$*" >&2; }

command -v deno >/dev/null || { echo "build: deno not found; run: bash setup.sh" >&2; exit 1; }
log "type-checking"
deno check main.ts >&2
log "installing dependencies"
deno install --quiet >&2
log "building BPF objects"
bash ffi/bpf/build.sh

rm -rf "$out"
mkdir -p "$out/app"
cp -r main.ts deno.json deno.lock src "$out/app/"
cp -r ffi "$out/app/"
rm -rf "$out/app/ffi/bpf/vmlinux.h" "$out/app/ffi/bpf/out"
# Relative symlinks kept: native addons find their platform packages beside them.
cp -a node_modules "$out/app/node_modules"
# The bundled program resolves npm packages from node_modules alone, offline.
sed -i 's/"nodeModulesDir": "auto"/"nodeModulesDir": "manual"/' "$out/app/deno.json"
cp "$(command -v deno)" "$out/deno"
cat > "$out/coral-agent" <<'LAUNCHER'
#!/bin/sh
# coral-agent launcher: the bundled Deno runs the bundled program offline.
here=$(cd "$(dirname "$0")" && pwd)
export DENO_DIR="${DENO_DIR:-$here/.deno-cache}"
exec "$here/deno" run -A --cached-only --quiet \
  --config "$here/app/deno.json" "$here/app/main.ts" "$@"
LAUNCHER
chmod +x "$out/coral-agent"

log "smoke test"
"$out/coral-agent" version >&2
tar -C dist -czf dist/coral-agent.tar.gz coral-agent
log "built $out ($(du -sh "$out" | cut -f1)) and dist/coral-agent.tar.gz"

if [ -n "${DENORT_BIN:-}" ]; then
  log "compiling the single executable with DENORT_BIN=$DENORT_BIN"
  deno compile -A --include ffi/bpf/objects.gen.ts --output dist/coral-agent-bin main.ts >&2
fi
