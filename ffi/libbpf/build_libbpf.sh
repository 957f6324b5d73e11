#!/usr/bin/env bash
# Builds the libbpf the agent carries inside itself, so that it runs on hosts
# without libbpf, libelf or zlib:
#   out/src/             Debian source packages of libbpf, elfutils and zlib
#                        (apt-get source: needs a deb-src entry, see setup.sh)
#   out/build/           their unpacked trees (Debian patches applied), built
#                        as position-independent static code: zlib → libz.a,
#                        elfutils → libelf_pic.a + libeu.a, libbpf → PIC objects
#   out/libbpf-coral.so  one shared library, soname libbpf-coral.so: libbpf's
#                        own version script exports only libbpf's API, libelf
#                        and zlib stay hidden inside; NEEDED is glibc alone
#   libbpf_so.gen.ts     LIBBPF_SO_BASE64, LIBBPF_SO_SHA256, LIBBPF_SO_VERSION
#                        for ffi/libbpf/bundled_library.ts (not committed)
# Rebuilds only when the source versions, the compiler or this script change;
# the checks and the .gen.ts (rewritten only when it differs) run every time.
# Needs: apt, dpkg-dev, gcc, make, binutils, bzip2, xz-utils (see setup.sh).
set -euo pipefail
cd "$(dirname "$0")"

log() { printf 'libbpf build: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }
need() { command -v "$1" >/dev/null || fail "$1 not found: apt-get install -y $2"; }

CC=${CC:-gcc}
export CC
need apt-get apt
need dpkg-source dpkg-dev
need "$CC" gcc
need make make
need readelf binutils
need strip binutils
need ar binutils
need bzip2 bzip2
need xz xz-utils
need sha256sum coreutils
need base64 coreutils

here=$PWD
out=$here/out
src=$out/src
build=$out/build
so=$out/libbpf-coral.so
gen=$here/libbpf_so.gen.ts
jobs=$(nproc 2>/dev/null || echo 2)
packages=(libbpf elfutils zlib)
mkdir -p "$src"

# Runs a step with its output in out/build/NAME.log, shown only on failure.
run() {
  local name=$1
  shift
  if ! "$@" >"$build/$name.log" 2>&1; then
    tail -n 30 "$build/$name.log" >&2
    fail "$name failed: see ffi/libbpf/out/build/$name.log"
  fi
}

# Which source versions apt offers (local indexes only, no download). Run
# outside out/src: apt leaves out the files already downloaded there.
uris=$(cd "$out" && apt-get source --print-uris "${packages[@]}" 2>&1) ||
  fail "apt-get source --print-uris ${packages[*]} failed: ${uris##*$'\n'} (needs a deb-src entry and apt-get update, see setup.sh)"
declare -A dsc version upstream
for pkg in "${packages[@]}"; do
  file=$(awk -v p="$pkg" '$2 ~ "^" p "_.*\\.dsc$" { print $2 }' <<<"$uris" | head -n1)
  [ -n "$file" ] || fail "no source package $pkg in apt's deb-src indexes (apt-get update?)"
  dsc[$pkg]=$file
  version[$pkg]=${file#"${pkg}_"}
  version[$pkg]=${version[$pkg]%.dsc}
  upstream[$pkg]=${version[$pkg]%-*}
  upstream[$pkg]=${upstream[$pkg]%[.+~]dfsg*}
done
log "sources: libbpf ${version[libbpf]}, elfutils ${version[elfutils]}, zlib ${version[zlib]}"

key=$(
  {
    sha256sum "$here/build_libbpf.sh"
    printf '%s\n' "${dsc[@]}"
    "$CC" --version | head -n1
    "$CC" -dumpmachine
  } | sha256sum | cut -d' ' -f1
)

if [ -f "$so" ] && [ "$(cat "$out/libbpf-coral.key" 2>/dev/null)" = "$key" ]; then
  log "up to date: ffi/libbpf/out/libbpf-coral.so"
else
  missing=()
  for pkg in "${packages[@]}"; do [ -f "$src/${dsc[$pkg]}" ] || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "downloading sources: ${missing[*]} (apt-get source --download-only)"
    (cd "$src" && apt-get source --download-only "${missing[@]}" >"$src/download.log" 2>&1) ||
      { tail -n 20 "$src/download.log" >&2; fail "apt-get source ${missing[*]} failed: see ffi/libbpf/out/src/download.log"; }
  fi

  rm -rf "$build" "$out/libbpf-coral.key"
  mkdir -p "$build"
  log "unpacking sources (dpkg-source -x, Debian patches applied)"
  for pkg in "${packages[@]}"; do
    run "unpack-$pkg" dpkg-source -x "$src/${dsc[$pkg]}" "$build/$pkg"
  done

  log "building zlib ${upstream[zlib]} (static, PIC)"
  (
    cd "$build/zlib"
    run zlib-configure env CFLAGS="-O2 -fPIC -fstack-protector-strong" ./configure --static
    run zlib-make make -j"$jobs" libz.a
  )

  log "configuring elfutils ${upstream[elfutils]} (libelf only, every option off)"
  mkdir -p "$build/elfutils-build"
  (
    cd "$build/elfutils-build"
    run elfutils-configure ../elfutils/configure \
      --disable-debuginfod --disable-libdebuginfod --disable-nls \
      --disable-symbol-versioning \
      --with-zlib --without-bzlib --without-lzma --without-zstd \
      CFLAGS="-O2 -fstack-protector-strong" \
      CPPFLAGS="-I$build/zlib" LDFLAGS="-L$build/zlib"
    log "building libelf_pic.a"
    run elfutils-lib make -C lib -j"$jobs" libeu.a
    run elfutils-libelf make -C libelf -j"$jobs" libelf_pic.a
  )

  log "building libbpf ${upstream[libbpf]} (PIC objects)"
  printf 'coral-print-%%:\n\t@echo $($*)\n' >"$build/print.mk"
  objects=$(make -s -C "$build/libbpf/src" -f Makefile -f "$build/print.mk" \
    OBJDIR="$build/libbpf-obj" NO_PKG_CONFIG=1 coral-print-SHARED_OBJS)
  [ -n "$objects" ] || fail "libbpf's src/Makefile lists no SHARED_OBJS"
  # shellcheck disable=SC2086 # one word per object
  run libbpf-make make -C "$build/libbpf/src" -j"$jobs" \
    OBJDIR="$build/libbpf-obj" NO_PKG_CONFIG=1 \
    CFLAGS="-O2 -Wall -std=gnu89 -fstack-protector-strong -D_FORTIFY_SOURCE=2" \
    EXTRA_CFLAGS="-I$build/elfutils/libelf -I$build/zlib" $objects

  log "linking ffi/libbpf/out/libbpf-coral.so"
  # shellcheck disable=SC2086
  run link "$CC" -shared -o "$so.tmp" \
    -Wl,-soname,libbpf-coral.so \
    -Wl,--version-script="$build/libbpf/src/libbpf.map" \
    -Wl,--no-undefined -Wl,--gc-sections -Wl,-z,relro,-z,now -Wl,-z,noexecstack \
    -static-libgcc \
    $objects \
    "$build/elfutils-build/libelf/libelf_pic.a" \
    "$build/elfutils-build/lib/libeu.a" \
    "$build/zlib/libz.a"
  run strip strip --strip-unneeded "$so.tmp"
  mv "$so.tmp" "$so"
  echo "$key" >"$out/libbpf-coral.key"
fi

# The library may depend on glibc alone: libc.so.6, and the dynamic loader.
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
  case $lib in
    libc.so.6 | ld-linux*.so.* | ld64.so.*) ;;
    *) fail "libbpf-coral.so needs $lib: only glibc (libc.so.6, ld-linux) may stay dynamic" ;;
  esac
done
readelf -d "$so" | grep -q TEXTREL && fail "libbpf-coral.so has text relocations: some object is not PIC"

# Every libbpf function the agent declares in symbols.ts must be exported.
exported=$(readelf --dyn-syms -W "$so" |
  awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") { sub(/@.*/, "", $8); print $8 }' | sort -u)
declared=$(awk '/^export const LIBBPF_SYMBOLS = \{/ { on = 1; next }
  on && /^\}/ { on = 0 }
  on && match($0, /^  [A-Za-z_][A-Za-z0-9_]*:/) { print substr($0, 3, RLENGTH - 3) }' symbols.ts | sort -u)
[ -n "$declared" ] || fail "found no LIBBPF_SYMBOLS in ffi/libbpf/symbols.ts"
absent=$(comm -23 <(echo "$declared") <(echo "$exported"))
[ -z "$absent" ] || fail "libbpf-coral.so does not export: $(echo $absent) (declared in ffi/libbpf/symbols.ts)"
glibc=$(readelf --dyn-syms -W "$so" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
log "checked: NEEDED $(echo $needed), $(echo "$declared" | wc -l) declared symbols exported, needs ${glibc:-any} or newer"

sha=$(sha256sum "$so" | cut -d' ' -f1)
versions="libbpf ${upstream[libbpf]}, elfutils ${upstream[elfutils]}, zlib ${upstream[zlib]}"
{
  echo "// Generated by ffi/libbpf/build_libbpf.sh: do not edit, not committed."
  echo "// Debian sources ${dsc[libbpf]} ${dsc[elfutils]} ${dsc[zlib]}; $("$CC" -dumpmachine)."
  echo ""
  echo "/** What libbpf-coral.so was built from. */"
  echo "export const LIBBPF_SO_VERSION = \"$versions\";"
  echo ""
  echo "/** sha256 of libbpf-coral.so, hex. */"
  echo "export const LIBBPF_SO_SHA256 ="
  echo "  \"$sha\";"
  echo ""
  echo "/** libbpf-coral.so (libbpf with libelf and zlib linked in), base64. */"
  echo "export const LIBBPF_SO_BASE64 ="
  echo "  \"$(base64 -w0 "$so")\";"
} >"$gen.tmp"
if cmp -s "$gen.tmp" "$gen"; then
  rm "$gen.tmp"
  log "ffi/libbpf/libbpf_so.gen.ts unchanged ($versions, $(($(stat -c %s "$so") / 1024)) KiB)"
else
  mv "$gen.tmp" "$gen"
  log "wrote ffi/libbpf/libbpf_so.gen.ts ($versions, $(($(stat -c %s "$so") / 1024)) KiB, sha256 ${sha:0:16}…)"
fi
