#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need, then every test project of the solution.
# Tests that need a server (memcached, PostgreSQL) start their own on a free loopback port and stop it afterwards;
# SHAREDENTITIES_TEST_MEMCACHED and SHAREDENTITIES_TEST_PGBIN point them at other binaries (TestSupport/README.md).
# Model.Tests checks docs/model/protocol.pml with spin, whose verifiers are C compiled with gcc.
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=()
command -v memcached >/dev/null 2>&1 || need_install+=(memcached)
command -v spin >/dev/null 2>&1 || need_install+=(spin)
command -v gcc >/dev/null 2>&1 || need_install+=(gcc)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "installing: ${need_install[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

results=artifacts/test-results
rm -rf "$results"
dotnet test SharedEntities.slnx \
  --logger trx \
  --results-directory "$results" \
  --blame-hang-timeout 5m \
  "$@"
