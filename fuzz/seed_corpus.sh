#!/usr/bin/env bash
# Builds the fuzz seed corpus from the shared fixtures at run time: the first 64 KiB of each file
# (the fixtures' license is unknown, so neither they nor slices of them are committed), plus the
# whole of the small ones so the tail paths are reached too.
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
