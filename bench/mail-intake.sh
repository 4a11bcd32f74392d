#!/usr/bin/env bash
# loket e-mail intake benchmark (issue 9): 1,000 messages pushed into eight mailboxes of a
# throw-away Dovecot (started and stopped by the benchmark itself, as in the tests), then the time
# until every message is a case (contact, timeline, acknowledgement in the outbox) and a work item
# in the router's in-process store, and the cost per message; on SQLite and on PostgreSQL
# (LOKET_TEST_POSTGRES_URL, default the local `test` database). Goal: 100 messages/s.
# MESSAGES=n changes the count. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -x /usr/sbin/dovecot ] || { echo "Dovecot is needed: apt-get install dovecot-imapd" >&2; exit 1; }
echo "# building the benchmark (release)"
cargo build --release -p loket-flows --features testing --example mail_intake_bench 2>&1 | tail -1
echo "# $(nproc) cores; before: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 "$CARGO_TARGET_DIR/release/examples/mail_intake_bench"
echo "# after: $(cut -d' ' -f1-3 /proc/loadavg)"
