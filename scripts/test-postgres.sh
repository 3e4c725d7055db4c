#!/usr/bin/env bash
# Prepare a PostgreSQL database for the test suite and print its URL on stdout.
#
# Uses a local Debian PostgreSQL cluster (starting it if it is installed but down), creates the
# role `caboose_test` and the database `caboose_test`, and prints the async SQLAlchemy URL.
# Prints nothing and exits 1 when no PostgreSQL server is installed.
set -euo pipefail

command -v pg_lsclusters >/dev/null 2>&1 || exit 1
cluster=$(pg_lsclusters --no-header 2>/dev/null | head -n 1) || true
[ -n "$cluster" ] || exit 1
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$name" start >&2
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.2
done

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}
password=caboose_test
as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'caboose_test') THEN
    CREATE ROLE caboose_test LOGIN PASSWORD '$password';
  END IF;
END \$\$;
SQL
if ! as_postgres psql -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname='caboose_test'" | grep -q 1; then
  as_postgres createdb -p "$port" -O caboose_test caboose_test
fi
echo "postgresql+asyncpg://caboose_test:$password@127.0.0.1:$port/caboose_test"
