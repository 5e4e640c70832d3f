#!/usr/bin/env bash
# Everything the tests need, then every suite. Works on a fresh Debian/Ubuntu machine with Node 20:
#   npm run test:all
# Installs missing Debian packages with apt-get (as root, or through sudo), npm packages with npm ci,
# and code-server + playwright-core for the real-VS-Code suites (test/e2e/setup.mjs, cached).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { echo; echo "== $* ($((SECONDS - started)) s)"; }

# Debian packages the hub suites use: asciinema (captures are checked with the real player).
# test/e2e/setup.mjs installs the ones VS Code needs (chromium, libkrb5-dev, ripgrep).
need=()
command -v asciinema >/dev/null || need+=(asciinema)
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "missing ${need[*]} and not root: install them (apt-get install ${need[*]}) and run again" >&2; exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "npm ci"
npm ci --no-audit --no-fund

step "hub, CLI, extension logic, hardening and load (npm test)"
npm test

step "the .vsix, and a real VS Code (code-server) with chromium"
npm run package
node test/e2e/setup.mjs
npx tsc -p test/e2e/jsconfig.json

step "in a real VS Code: the UI as a user drives it, and extension-host tests (test/e2e)"
node --test --test-concurrency=1 test/e2e/*.test.mjs

step "all suites passed in $((SECONDS - started)) s"
