#!/usr/bin/env bash
# The agent's workspace with 50,000 citizens and 100,000 cases, on SQLite and on PostgreSQL
# (LOKET_TEST_POSTGRES_URL, default the local `test` database): the time from handing a call to
# the router until the workspace shows its offer and screen pop, and the server time of
# /api/workspace and /workspace. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOKET_TEST_POSTGRES_URL="${LOKET_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo bench -p loket-flows --features testing --bench workspace
