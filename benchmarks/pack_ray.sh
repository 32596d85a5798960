#!/usr/bin/env bash
# Ray for the GPU machine, which has no network and takes at most 64 MiB per device call: Ray's wheel is 79 MB, so
# this packs only Ray core (no Java jars, dashboard web client, RLlib, Data, Serve, Tune, Train), xz-compressed
# (about 20 MB), plus the packages Ray needs that the machine's image lacks (jsonschema and its own needs).
#   bash benchmarks/pack_ray.sh            # writes .raypack/ (git-ignored); gpu_judge.sh's multigpu step unpacks it
set -euo pipefail
RAY_VERSION=${RAY_VERSION:-2.60.0}
PLATFORMS=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p .raypack
grep -qx '/.raypack/' .git/info/exclude 2>/dev/null || echo '/.raypack/' >> .git/info/exclude
pip_download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" "$@"
}
pip_download -d "$work" "ray==$RAY_VERSION"
pip_download -d .raypack jsonschema jsonschema-specifications referencing rpds-py
mkdir "$work/tree" && (cd "$work/tree" && python3 -m zipfile -e "$work"/ray-*.whl .)
rm -rf "$work"/tree/ray/{jars,dashboard/client/build,rllib,data,serve,tune,train,air,llm}
tar -C "$work/tree" -cf - . | xz -9 -T0 > .raypack/ray-core.tar.xz
du -sh .raypack
