#!/usr/bin/env bash
# Everything the tests need, then every suite. Works on a fresh Debian/Ubuntu machine with Node 20:
#   npm run test:all
# Installs missing Debian packages with apt-get (as root, or through sudo), npm packages with npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suites use: asciinema (captures are checked with the real player).
need=()
command -v asciinema >/dev/null || need+=(asciinema)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "missing ${need[*]} and not root: install them (apt-get install ${need[*]}) and run again" >&2; exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
npm test
