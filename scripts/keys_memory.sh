#!/usr/bin/env bash
# Peak memory of reading an ML-20M-sized file (20 M rows, 138,493 users, 26,744 items) with
# string keys (`user-0000123`, `sku-00042`) beside the same rows with integer keys.
# Not run in CI (it writes ~1 GB of CSV and takes minutes). Usage:
#   scripts/keys_memory.sh [EMBER_BINARY] [WORK_DIR]
# Prints one line per key kind: file size, peak RSS of `ember data stats`, wall time.
set -euo pipefail
ember=${1:-target/release/ember}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
python3 - "$work" <<'PY'
import random, sys
work = sys.argv[1]
users, items, rows = 138_493, 26_744, 20_000_000
rng = random.Random(20)
# Zipf-like item popularity, as in ML-20M: item k drawn with weight 1 / (k + 10).
weights = [1.0 / (k + 10) for k in range(items)]
per_user = rows // users
with open(f"{work}/strings.csv", "w") as s, open(f"{work}/integers.csv", "w") as n:
    s.write("user,item,ts\n")
    n.write("user,item,ts\n")
    written = 0
    for u in range(users):
        count = per_user + (1 if u < rows - per_user * users else 0)
        chosen = rng.choices(range(items), weights=weights, k=count)
        lines_s, lines_n = [], []
        for t, i in enumerate(chosen):
            lines_s.append(f"user-{u:07d},sku-{i:05d},{t}\n")
            lines_n.append(f"{u},{i},{t}\n")
        s.write("".join(lines_s))
        n.write("".join(lines_n))
        written += count
    assert written == rows, written
PY
for kind in integers strings; do
  cat > "$work/$kind.toml" <<TOML
[data]
format = "delimited"
path = "$work/$kind.csv"
user = "user"
item = "item"
timestamp = "ts"
TOML
  size=$(du -m "$work/$kind.csv" | cut -f1)
  /usr/bin/time -f "%M %e" -o "$work/$kind.time" "$ember" data stats --config "$work/$kind.toml" > "$work/$kind.out"
  read -r rss wall < "$work/$kind.time"
  echo "$kind: ${size} MB of CSV, peak RSS $((rss / 1024)) MiB, ${wall} s ($(head -c 200 "$work/$kind.out" | tr '\n' ' '))"
done
