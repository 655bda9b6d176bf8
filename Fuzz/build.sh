#!/usr/bin/env bash
# Builds one libFuzzer binary per target under Fuzz/.build/ (git-ignored):
#   Fuzz/build.sh safetensors|config|tokenizer-load|tokenizer-encode|image|video ...
#
# Only Eaglet's own code is instrumented: each Swift module a target needs is compiled with
# -sanitize=fuzzer,address into an object plus a .swiftmodule, in dependency order, and the C shim of
# Imaging and Video with clang -fsanitize=fuzzer-no-link,address. Debian's libpng, libjpeg, FFmpeg and
# OpenBLAS are linked as they are (not instrumented). SwiftPM is not involved, so `swift build` and
# `make test` never see these targets.
set -euo pipefail
cd "$(dirname "$0")/.."
B=Fuzz/.build
mkdir -p "$B"
SAN=(-sanitize=fuzzer,address)
SWIFTFLAGS=(-O -g -swift-version 5 -parse-as-library -wmo -I "$B" -I Sources/_CBLAS -I "$B/_ImageCodecs" -I "$B/_CFFmpeg"
            -I "$B/_CKernels"
            -Xcc -I/usr/include/x86_64-linux-gnu)

# module → the modules it imports (Package.swift's graph, restricted to what the targets reach).
deps() {
  case "$1" in
    _Essentials) echo "";;
    Tensor) echo "_CKernels";;
    Tokenizer) echo "_Essentials";;
    SafeTensors) echo "Tensor _Essentials";;
    PatchEmbed) echo "Tensor";;
    QwenAttention) echo "Tensor _CKernels";;
    _ImageCodecs|_CFFmpeg|_CKernels) echo "";;
    Video) echo "Imaging _CFFmpeg";;
    Imaging) echo "Tensor _ImageCodecs _Essentials";;
    Tiler) echo "Imaging";;
    SigLIP2) echo "SafeTensors PatchEmbed _Essentials";;
    Connector) echo "SafeTensors";;
    Qwen2) echo "SafeTensors QwenAttention _Essentials";;
    Eagle) echo "Connector Imaging Qwen2 QwenAttention SafeTensors SigLIP2 Tiler Tokenizer _Essentials";;
  esac
}

declare -A BUILT=()
OBJECTS=()
module() {
  local m=$1
  [[ -n "${BUILT[$m]:-}" ]] && return
  for d in $(deps "$m"); do module "$d"; done
  BUILT[$m]=1
  if [[ $m == _ImageCodecs || $m == _CFFmpeg || $m == _CKernels ]]; then   # a C shim target: a module map for its header, its .c files instrumented
    mkdir -p "$B/$m"
    local header
    header=$(ls "$PWD"/Sources/"$m"/include/*.h | head -1)
    printf 'module %s {\n  header "%s"\n  export *\n}\n' "$m" "$header" > "$B/$m/module.modulemap"
    for c in Sources/"$m"/*.c; do
      local o="$B/$m/$(basename "$c" .c).o"
      if [[ ! -f $o || $c -nt $o ]]; then
        echo "  clang $c"
        clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/"$m"/include -I/usr/include/x86_64-linux-gnu -c "$c" -o "$o"
      fi
      OBJECTS+=("$o")
    done
    return
  fi
  local o="$B/$m.o" newest
  newest=$(ls -t Sources/"$m"/*.swift | head -1)
  # Rebuild when a source is newer than the object, or a dependency was rebuilt after it.
  local stale=0
  [[ ! -f $o || $newest -nt $o ]] && stale=1
  for d in $(deps "$m"); do [[ -f "$B/$d.o" && "$B/$d.o" -nt $o ]] && stale=1; done
  if (( stale )); then
    echo "  swiftc $m"
    swiftc "${SWIFTFLAGS[@]}" "${SAN[@]}" -module-name "$m" -emit-module -emit-module-path "$B/$m.swiftmodule" \
      -c Sources/"$m"/*.swift -o "$o"
  fi
  OBJECTS+=("$o")
}

target_modules() {
  case "$1" in
    safetensors) echo "SafeTensors";;
    config) echo "Eagle";;
    tokenizer-load|tokenizer-encode) echo "Tokenizer";;
    image) echo "Imaging";;
    video) echo "Video";;
    *) echo "unknown fuzz target '$1' (safetensors, config, tokenizer-load, tokenizer-encode, image, video)" >&2; exit 64;;
  esac
}

for t in "$@"; do
  BUILT=(); OBJECTS=()
  for m in $(target_modules "$t"); do module "$m"; done
  out="$B/fuzz-$t"
  echo "  link $out"
  swiftc "${SWIFTFLAGS[@]}" "${SAN[@]}" -module-name "Fuzz_${t//-/_}" Fuzz/"$t"/main.swift "${OBJECTS[@]}" \
    -lopenblas -lpng16 -ljpeg -lavformat -lavcodec -lswscale -lavutil -o "$out" 2>&1 | { grep -v "Cannot export local symbol '__asan" || true; }
  [[ -x $out && $out -nt Fuzz/$t/main.swift ]] || { echo "link of $out failed" >&2; exit 1; }
done
