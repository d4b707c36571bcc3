#!/usr/bin/env bash
# Assemble the deployable Function App: dist/lrs-autopilot.zip with
#   host.json                      at the root,
#   <Function>/function.json       for each handlers/<Function>/function.json,
#   the binary                     at the path host.json names (customHandler.description.defaultExecutablePath),
#                                  with its executable bit (the app runs it straight from the mounted zip).
#
# usage: scripts/package.sh [--binary PATH] [--out PATH] [--root DIR] [--zip-with zip|python] [--plan PLAN]
#   --binary PATH    package this binary instead of building one (cargo build --release --locked)
#   --out PATH       write the zip here (default: <root>/dist/lrs-autopilot.zip)
#   --root DIR       project root holding host.json and handlers/ (default: this script's repository)
#   --zip-with TOOL  zip (Info-ZIP) or python (zipfile); default: zip when installed, else python
#   --plan PLAN      the infra's hostingPlan (FlexConsumption, ElasticPremium or Dedicated): print only the
#                    deployment command for that plan (default: print each plan's)
#
# The same zip deploys to every plan; how it reaches the app differs (infra/README.md, "Deploy the code"):
#   FlexConsumption: az functionapp deployment source config-zip (one deploy, with your Entra ID sign-in); the
#                    platform stores the package in the app's deployment container.
#   ElasticPremium, Dedicated: upload the zip to the package blob the app runs from, then restart the app.
#
# Needs python3 (reads host.json; writes the zip when Info-ZIP is absent).
set -euo pipefail

die() {
    echo "package: error: $*" >&2
    exit 1
}
usage_error() {
    echo "package: error: $*" >&2
    echo "usage: scripts/package.sh [--binary PATH] [--out PATH] [--root DIR] [--zip-with zip|python] [--plan PLAN]" >&2
    exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary=""
out=""
zip_with=""
plan=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary | --out | --root | --zip-with | --plan)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            case "$1" in
                --binary) binary="$2" ;;
                --out) out="$2" ;;
                --root) root="$2" ;;
                --zip-with) zip_with="$2" ;;
                --plan) plan="$2" ;;
            esac
            shift 2
            ;;
        -h | --help)
            sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

case "$plan" in
    "" | FlexConsumption | ElasticPremium | Dedicated) ;;
    *) usage_error "--plan must be FlexConsumption, ElasticPremium or Dedicated (the infra's hostingPlan), not: $plan" ;;
esac

command -v python3 >/dev/null 2>&1 || die "python3 is required (it reads host.json)"
[ -d "$root" ] || die "project root not found: $root"
root="$(cd "$root" && pwd)"
[ -f "$root/host.json" ] || die "host.json not found in $root"
[ -d "$root/handlers" ] || die "handlers/ not found in $root"

case "$zip_with" in
    "") if command -v zip >/dev/null 2>&1; then zip_with=zip; else zip_with=python; fi ;;
    zip) command -v zip >/dev/null 2>&1 || die "--zip-with zip: the zip command is not installed" ;;
    python) ;;
    *) usage_error "--zip-with must be zip or python, not: $zip_with" ;;
esac

# The executable's path inside the app, from host.json; refuse anything that could land outside the package.
exe_path="$(
    python3 - "$root/host.json" <<'PY'
import json, sys
def fail(message):
    sys.exit(f"package: error: {message}")
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        host = json.load(f)
except (OSError, ValueError) as e:
    fail(f"host.json is not valid json: {e}")
try:
    path = host["customHandler"]["description"]["defaultExecutablePath"]
except (KeyError, TypeError):
    fail("host.json has no customHandler.description.defaultExecutablePath")
if not isinstance(path, str) or not path.strip():
    fail("host.json: defaultExecutablePath must be a non-empty string")
parts = path.replace("\\", "/").split("/")
if path.startswith("/") or "\\" in path or ":" in path or any(p in ("", ".", "..") for p in parts):
    fail(f"host.json: defaultExecutablePath must be a plain relative path inside the app, not {path!r}")
print(path)
PY
)" || exit 1

# Every function folder must hold a valid function.json; the folder name is the function name.
functions=()
for dir in "$root"/handlers/*/; do
    [ -d "$dir" ] || continue
    name="$(basename "$dir")"
    [ -f "$dir/function.json" ] || die "handlers/$name has no function.json"
    python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$dir/function.json" 2>/dev/null ||
        die "handlers/$name/function.json is not valid json"
    [ "$name" != "$(dirname "$exe_path")" ] || die "handlers/$name clashes with the executable's folder"
    functions+=("$name")
done
[ ${#functions[@]} -gt 0 ] || die "no functions found under handlers/"

if [ -z "$binary" ]; then
    echo "package: building the release binary (cargo build --release --locked)" >&2
    (cd "$root" && cargo build --release --locked)
    binary="${CARGO_TARGET_DIR:-$root/target}/release/lrs-autopilot"
fi
[ -f "$binary" ] || die "binary not found: $binary"

[ -n "$out" ] || out="$root/dist/lrs-autopilot.zip"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$root/host.json" "$stage/host.json"
for name in "${functions[@]}"; do
    mkdir -p "$stage/$name"
    cp "$root/handlers/$name/function.json" "$stage/$name/function.json"
done
mkdir -p "$stage/$(dirname "$exe_path")"
cp "$binary" "$stage/$exe_path"
chmod 0755 "$stage/$exe_path"

rm -f "$out"
if [ "$zip_with" = zip ]; then
    # -X: no uid/gid or extra timestamps (the Unix mode, so the executable bit, is kept); -D: no folder entries.
    (cd "$stage" && zip -q -r -X -D "$out" .)
else
    python3 - "$stage" "$out" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
    for folder, dirs, files in os.walk(stage):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            arcname = os.path.relpath(path, stage).replace(os.sep, "/")
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Keep the Unix mode so the executable stays executable once mounted.
            info.external_attr = (os.stat(path).st_mode & 0xFFFF) << 16
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY
fi

echo "package: wrote $out ($(wc -c <"$out" | tr -d ' ') bytes; functions: ${functions[*]}; executable: $exe_path; zip: $zip_with)" >&2

# How to deploy it: the values in <> are outputs of the infra deployment (infra/README.md).
deploy_flex() {
    echo "  hostingPlan FlexConsumption (one deploy; needs rights on the app, e.g. Contributor on its resource group):" >&2
    echo "    az functionapp deployment source config-zip -g <resource group> -n <functionAppName> --src $out" >&2
}
deploy_package_blob() {
    echo "  hostingPlan $1 (upload to the package blob, then restart; needs Storage Blob Data Contributor on <packageContainer>):" >&2
    echo "    az storage blob upload --auth-mode login --account-name <packageStorageAccount> -c <packageContainer> -n <packageBlob> -f $out --overwrite" >&2
    echo "    az functionapp restart -g <resource group> -n <functionAppName>" >&2
}
echo "package: deploy it with:" >&2
case "$plan" in
    FlexConsumption) deploy_flex ;;
    ElasticPremium | Dedicated) deploy_package_blob "$plan" ;;
    *)
        deploy_flex
        deploy_package_blob ElasticPremium
        deploy_package_blob Dedicated
        ;;
esac
