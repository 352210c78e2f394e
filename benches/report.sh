#!/usr/bin/env bash
# Runs the benchmarks and prints the median of each (criterion's estimate and
# its 95% confidence interval), the numbers the README quotes.
#   benches/report.sh            # all benchmarks
#   benches/report.sh access     # one bench target
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then set -- access proxy store; fi
for bench in "$@"; do
  cargo bench --bench "$bench" >/dev/null
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
find target/criterion -path '*/new/estimates.json' | sort | while read -r file; do
  name=${file#target/criterion/}
  name=${name%/new/estimates.json}
  python3 - "$file" "$name" <<'PY'
import json, sys
median = json.load(open(sys.argv[1]))["median"]
ci = median["confidence_interval"]
def fmt(ns):
    return f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.1f} ns"
print(f"{sys.argv[2]:40s} median {fmt(median['point_estimate']):>10s}  [{fmt(ci['lower_bound'])} .. {fmt(ci['upper_bound'])}]")
PY
done
