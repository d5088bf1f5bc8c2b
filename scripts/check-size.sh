#!/usr/bin/env bash
# Fails when a source file grows past 400 lines (tests, fixtures and generated files aside):
# files are split by concern, never squeezed (STYLE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=400
bad=0
while IFS= read -r f; do
  n=$(wc -l <"$f")
  if [ "$n" -gt "$limit" ]; then
    echo "check-size: $f has $n lines (limit $limit)"
    bad=1
  fi
done < <(git ls-files 'packages/*' 'native/*' 'bench/*' 'examples/*' \
  | grep -E '\.(ts|mts|js|cc|cpp|h|hpp|cu|cuh)$' \
  | grep -vE '(^|/)(test|tests|__tests__|fixtures|generated)/|\.test\.|\.spec\.|\.d\.ts$')
[ "$bad" -eq 0 ] && echo "check-size: every source file is within $limit lines"
exit "$bad"
