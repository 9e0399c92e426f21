#!/usr/bin/env bash
# lint.sh SRC_DIR [LIBPEFA_A LIBPEFA_SO] - code-health rules that must stay true
# (run by ctest as lint_code; each failure is printed, exit 1 if any):
#   1. no function over 120 lines in libidx/, tools/ and python/src/
#   2. layers only include down (docs/architecture.md):
#        common <- container, kernels <- hnsw ; container <- idmap ; all <- pefa
#      and tools include pefa.h and their own util/ (and serve/) headers only; the
#      Python extension (python/src) pefa.h and its own pefapy.h only
#   3. libpefa.a defines only pefa_* globals: pefa_<name> = the API in pefa.h,
#      pefa__<name> = internal; libpefa.so exports exactly the API
set -euo pipefail
src=${1:?usage: lint.sh SRC_DIR [LIBPEFA_A LIBPEFA_SO]}
liba=${2:-}
libso=${3:-}
fail=0
bad() { echo "lint: $*"; fail=1; }

# 1. function length: a body runs from "{" to "}" in column 0 (clang-format style)
max_lines=120
while IFS=$'\t' read -r n where; do
  [ "$n" -le "$max_lines" ] || bad "$where: function of $n lines (max $max_lines)"
done < <(find "$src/libidx" "$src/tools" "$src/python/src" -name '*.c' -print0 2>/dev/null | xargs -0 awk '
  /^\{/ { start = FNR }
  /^\}/ { if (start) { printf "%d\t%s:%d\n", FNR - start + 1, FILENAME, start; start = 0 } }')

# 2. includes
allowed() { # layer -> the layers it may include
  case $1 in
    common) echo "common" ;;
    container) echo "common container" ;;
    kernels) echo "common kernels" ;;
    hnsw) echo "common kernels hnsw" ;;
    idmap) echo "common container idmap" ;;
    pefa) echo "common container kernels hnsw idmap pefa" ;;
    *) echo "" ;;
  esac
}
for dir in "$src"/libidx/*/; do
  layer=$(basename "$dir")
  ok=$(allowed "$layer")
  [ -n "$ok" ] || { bad "libidx/$layer: a folder no layer rule names (add it to scripts/lint.sh and docs/architecture.md)"; continue; }
  while IFS=: read -r file line inc; do
    dep=${inc%%/*}
    case " $ok " in *" $dep "*) ;; *) bad "${file#$src/}:$line: layer '$layer' includes '$inc' (layer '$dep')" ;; esac
  done < <(grep -Hno '#include "[a-z]*/[^"]*"' "$dir"*.[ch] | sed -E 's/#include "([^"]*)"/\1/')
done
while IFS=: read -r file line inc; do
  case $inc in pefa.h|util/*|serve/*) ;; *) bad "${file#$src/}:$line: a tool includes '$inc' (tools use pefa.h, util/ and serve/ only)" ;; esac
done < <(grep -rHno '#include "[^"]*"' "$src/tools" | sed -E 's/#include "([^"]*)"/\1/')
if [ -d "$src/python/src" ]; then
  while IFS=: read -r file line inc; do
    case $inc in pefa.h|pefapy.h) ;; *) bad "${file#$src/}:$line: the Python extension includes '$inc' (pefa.h and pefapy.h only)" ;; esac
  done < <(grep -rHno '#include "[^"]*"' "$src/python/src" | sed -E 's/#include "([^"]*)"/\1/')
fi

# 3. symbols
if [ -n "$liba" ]; then
  api=$(grep -o 'PEFA_API [^(]*(' "$src/libidx/pefa.h" | grep -o 'pefa_[a-z0-9_]*(' | tr -d '(' | sort -u)
  defined=$(nm -g --defined-only "$liba" | awk 'NF == 3 { print $3 }' | sort -u)
  for s in $defined; do
    case $s in
      pefa__*) ;;
      pefa_*) grep -qx "$s" <<<"$api" || bad "libpefa.a: $s looks public but is not declared PEFA_API in pefa.h" ;;
      *) bad "libpefa.a: global symbol '$s' lacks the pefa_ prefix" ;;
    esac
  done
  for s in $api; do grep -qx "$s" <<<"$defined" || bad "pefa.h declares $s but libpefa.a does not define it"; done
  if [ -n "$libso" ]; then
    exported=$(nm -D --defined-only "$libso" | awk 'NF == 3 && $2 == "T" { print $3 }' | sort -u)
    [ "$exported" = "$api" ] || bad "libpefa.so exports $(echo "$exported" | wc -l) functions, pefa.h declares $(echo "$api" | wc -l): $(comm -3 <(echo "$exported") <(echo "$api") | tr -d '\t' | tr '\n' ' ')"
  fi
  echo "lint: $(echo "$api" | wc -l) API functions, $(echo "$defined" | grep -c '^pefa__') internal pefa__ symbols, none unprefixed"
fi
[ $fail -eq 0 ] && echo "lint: OK (functions <= $max_lines lines, layers include down, symbols prefixed)"
exit $fail
