#!/usr/bin/env bash
# Server time of the console's pages with 50,000 citizens and 100,000 cases, on SQLite and on
# PostgreSQL (LOKET_TEST_POSTGRES_URL, default the local `test` database). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p loket-crm --bench pages
