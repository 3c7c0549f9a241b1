#!/usr/bin/env bash
# Build faiss-node's native addon from its own npm sources against Debian's libfaiss (offline).
# faiss-node's install script (prebuild download from GitHub, then `git clone` faiss) is disabled through
# package.json "allowScripts"; this replaces it. Needs: libfaiss-dev libopenblas-dev g++ make python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/node_modules/faiss-node"
RECIPE="$ROOT/scripts/faiss-node"

log() { printf '[build-faiss-node] %s\n' "$*"; }
die() { printf '[build-faiss-node] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -f "$PKG/src/faiss.cc" ]] || die "$PKG/src/faiss.cc not found: run npm ci first"
[[ -f /usr/include/faiss/IndexFlat.h ]] || die "faiss headers missing: apt-get install libfaiss-dev libopenblas-dev"
[[ -f /usr/include/node/node_api.h ]] || die "node headers missing in /usr/include/node"

# node-gyp ships inside npm; do not fetch it.
NPM_ROOT="$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)"
NODE_GYP="$NPM_ROOT/node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$NODE_GYP" ]] || die "node-gyp not found at $NODE_GYP"

mkdir -p "$PKG/cotmae"
cp "$RECIPE/binding.gyp" "$PKG/binding.gyp"
cp "$RECIPE/faiss_compat.h" "$PKG/cotmae/faiss_compat.h"

log "node-gyp rebuild (nodedir=/usr, offline) in $PKG"
(
  cd "$PKG"
  # --nodedir=/usr: use the installed headers, never download them.
  node "$NODE_GYP" rebuild --nodedir=/usr --jobs="$(nproc)" --loglevel=warn
)

ADDON="$PKG/build/Release/faiss-node.node"
[[ -f "$ADDON" ]] || die "build finished but $ADDON is missing"

# Smoke test: exact inner-product search on 3 vectors.
(
  cd "$ROOT"
  node -e '
    const { IndexFlatIP } = require("faiss-node");
    const idx = new IndexFlatIP(2);
    idx.add([1, 0, 0, 1, 0.6, 0.8]);
    const r = idx.search([0.6, 0.8], 2);
    const ok = idx.ntotal() === 3 && r.labels[0] === 2 && r.labels[1] === 1 && Math.abs(r.distances[0] - 1) < 1e-6;
    if (!ok) { console.error("faiss-node smoke test failed:", JSON.stringify(r)); process.exit(1); }
  '
)
log "ok: $ADDON (IndexFlatIP add+search verified)"
