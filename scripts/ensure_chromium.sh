#!/usr/bin/env bash
# The browser of the UI test (ocp_assets_tests/test_dagster_ui.py): $OCP_ASSETS_CHROMIUM, else Debian's
# /usr/bin/chromium. Run by `make test` (and so by .ci/run): when it is missing, root with apt-get installs Debian's
# package; anyone else gets one line saying how, and a non-zero exit. Playwright's own browser download is not used:
# it is not reachable from CI.
set -euo pipefail

default=/usr/bin/chromium
chromium="${OCP_ASSETS_CHROMIUM:-$default}"

if [ ! -x "$chromium" ]; then
  if [ "$chromium" = "$default" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "== chromium (for the UI test) is missing; installing Debian's package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends chromium \
      || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }
  else
    echo "the UI test needs Chromium at $chromium: install it (Debian/Ubuntu: sudo apt-get install chromium)" \
      "or set OCP_ASSETS_CHROMIUM to a Chromium or Chrome binary" >&2
    exit 1
  fi
fi
"$chromium" --version
