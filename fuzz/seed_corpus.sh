#!/usr/bin/env bash
# Builds the fuzz seed corpus from the shared fixtures at run time: the first 64 KiB of each file
# (the fixtures' license is unknown, so neither they nor slices of them are committed), plus the
# whole of the small ones so the tail paths are reached too; and the compressed chunks for the
# xpress target.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="${LRS_FIXTURES:-$here/../../shared/fixtures/backups}"
out="$here/corpus/read_header"
mkdir -p "$out"
find "$fixtures" -type f ! -name '*.json' ! -name '*.md' | while read -r f; do
  name="$(echo "$f" | sha1sum | cut -c1-16)"
  head -c 65536 "$f" > "$out/$name.head"
  if [ "$(stat -c %s "$f")" -le 131072 ]; then cp "$f" "$out/$name.whole"; fi
done
echo "seeded $(ls "$out" | wc -l) inputs into $out"

# The xpress target: every compressed chunk of the compressed fixtures (its output size, a limit
# byte, its payload), walked through the records after the container header.
out="$here/corpus/xpress"
mkdir -p "$out"
find "$fixtures" -type f ! -name '*.json' ! -name '*.md' | while read -r f; do
  python3 - "$f" "$out" <<'PY'
import hashlib, struct, sys
raw = open(sys.argv[1], "rb").read()
if not raw.startswith(b"MSSQLBAK"):
    sys.exit(0)
at = 0x1E0
while at + 28 <= len(raw):
    kind, units, length = raw[at], raw[at + 1], struct.unpack_from("<H", raw, at + 2)[0]
    if kind == 0x21:
        payload = raw[at + 28 : at + 28 + length]
        seed = struct.pack("<H", min(units * 512, 8192) - 1) + bytes([128]) + payload
        name = hashlib.sha1(seed).hexdigest()[:16]
        open(f"{sys.argv[2]}/{name}.chunk", "wb").write(seed)
        at += 28 + length
    elif kind == 0x24:
        at += 24 + length
    elif raw[at : at + 4] == b"SFMB":
        # A filemark in clear: one sector, or more sectors of zero fill.
        at += 512
        while at < len(raw) and raw[at] == 0:
            at += 1
    else:
        break
PY
done
echo "seeded $(ls "$out" | wc -l) inputs into $out"
