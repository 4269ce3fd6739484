#!/usr/bin/env bash
# Sets up the official Python clients from their sources, for the by-hand compatibility check
# (`PYCLIENTS=DEST npm run compat`, see README "Checked against the real Python clients"). Not part
# of CI, which has no way to fetch those sources. Needs no package index: the clients run from
# their source trees on Debian's python3, with their dependencies from Debian packages.
#
# usage: scripts/official-clients.sh DEST HF_HUB_SRC MODELSCOPE_SRC MODELSCOPE_HUB_SRC
#   DEST               folder to fill (created; re-running reuses what is already there)
#   HF_HUB_SRC         git repository of huggingface/huggingface_hub (a path or anything `git clone` takes)
#   MODELSCOPE_SRC     git repository of modelscope/modelscope (tag v1.37.1 is checked out: the .msc layout)
#   MODELSCOPE_HUB_SRC git repository of modelscope/modelscope_hub (>= 1.38, the snapshots layout)
#
# Afterwards DEST holds three interpreters (Debian's python3), each seeing one client:
#   DEST/hfpy     huggingface_hub           DEST/hfpy -c 'import huggingface_hub as h; print(h.__version__)'
#   DEST/mspy     modelscope 1.37.1         DEST/mspy -c 'from modelscope.hub.snapshot_download import snapshot_download'
#   DEST/mshubpy  modelscope_hub            DEST/mshubpy -c 'import modelscope_hub'
# Point them at a test hub on loopback with HF_ENDPOINT=http://127.0.0.1:PORT (endpoint=... for ModelScope).
set -euo pipefail

if [ $# -ne 4 ]; then
  sed -n '7,12p' "$0" >&2
  exit 2
fi
dest=$1 hf_src=$2 ms_src=$3 mshub_src=$4
MODELSCOPE_TAG=v1.37.1

command -v git >/dev/null || { echo "official-clients: git is needed" >&2; exit 1; }
# Debian's interpreter, the one its python3-* packages are for (not a python3 found earlier on PATH).
py=/usr/bin/python3
[ -x "$py" ] || { echo "official-clients: $py is needed (apt-get install python3)" >&2; exit 1; }
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

# Dependencies the three clients import on their download paths, as Debian packages.
debs=(python3-filelock python3-fsspec python3-httpx python3-packaging python3-requests python3-tqdm
  python3-typing-extensions python3-urllib3 python3-yaml)
modules=(filelock fsspec httpx packaging requests tqdm typing_extensions urllib3 yaml)
missing=()
for i in "${!modules[@]}"; do
  "$py" -c "import ${modules[$i]}" 2>/dev/null || missing+=("${debs[$i]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "official-clients: installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# clone NAME SRC [REF]: a checkout of SRC in DEST/NAME (kept if present), at REF when given.
clone() {
  local name=$1 src=$2 ref=${3:-}
  [ -d "$dest/$name/.git" ] || git clone --quiet "$src" "$dest/$name"
  if [ -n "$ref" ]; then git -C "$dest/$name" -c advice.detachedHead=false checkout --quiet "$ref"; fi
  echo "official-clients: $name at $(git -C "$dest/$name" describe --tags --always)"
}
clone huggingface_hub "$hf_src"
clone modelscope "$ms_src" "$MODELSCOPE_TAG"
clone modelscope_hub "$mshub_src"

# Recent huggingface_hub passes FileLock(mode=...), which Debian's older filelock does not take.
# Loaded through sitecustomize, and only drops the argument when filelock cannot take it.
mkdir -p "$dest/compat"
cat >"$dest/compat/sitecustomize.py" <<'PY'
import inspect

import filelock

if "mode" not in inspect.signature(filelock.BaseFileLock.__init__).parameters:
    _base_init = filelock.BaseFileLock.__init__

    def _init(self, *args, mode=None, **kwargs):
        _base_init(self, *args, **kwargs)

    filelock.BaseFileLock.__init__ = _init
PY

# wrapper NAME PYTHONPATH CHECK: DEST/NAME runs python3 with that path; CHECK must import.
wrapper() {
  local name=$1 pypath=$2 check=$3
  cat >"$dest/$name" <<SH
#!/bin/sh
# Made by hubcache's scripts/official-clients.sh.
PYTHONPATH="$pypath" HF_HUB_DISABLE_TELEMETRY=1 exec $py "\$@"
SH
  chmod +x "$dest/$name"
  "$dest/$name" -c "$check" >/dev/null || { echo "official-clients: $name cannot run: $check" >&2; exit 1; }
}
wrapper hfpy "$dest/compat:$dest/huggingface_hub/src" 'import huggingface_hub'
wrapper mspy "$dest/compat:$dest/modelscope" 'from modelscope.hub.snapshot_download import snapshot_download'
wrapper mshubpy "$dest/compat:$dest/modelscope_hub/src" 'import modelscope_hub'

echo "official-clients: ready; run: PYCLIENTS=$dest npm run compat"
