#!/usr/bin/env bash
# Installs the system packages the local stack needs, only those missing: PostgreSQL 15 server binaries,
# a Java 17 runtime for the Kafka broker, and Maven to fetch the broker's jars. Needs root (or sudo).
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v pg_recvlogical >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/pg_recvlogical ] || need+=(postgresql-client-15)
if [ ${#need[@]} -eq 0 ]; then
  echo "prerequisites: postgresql-15, java and maven are present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "prerequisites: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${need[@]}"
