#!/usr/bin/env bash
# Installs the system packages the local stack needs, only those missing: PostgreSQL 15 server binaries,
# a Java 17 runtime for the Kafka broker, Maven to fetch the broker's jars, and the C++ toolchain, OpenSSL
# zlib and zstd headers the librdkafka client (the default) builds against, and promtool (Debian's prometheus
# package), jemalloc (the image's allocator, for the bench and the memory test), and unzip and xz to unpack
# PostgreSQL 16 to 18 from Maven Central. Needs root (or sudo).
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v pg_recvlogical >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/pg_recvlogical ] || need+=(postgresql-client-15)
# The librdkafka client (kafka.client=rdkafka, the default) compiles at `npm ci` against these; without
# libzstd-dev it builds without the zstd codec (kafka.compression zstd is then refused at start).
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || need+=(build-essential)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
[ -f /usr/include/zstd.h ] || need+=(libzstd-dev)
# jemalloc, which the image preloads: the bench and the memory test run the relay with it (stack/image-allocator.ts).
/sbin/ldconfig -p | grep 'libjemalloc\.so\.2 ' >/dev/null || need+=(libjemalloc2)
# promtool checks and unit-tests deploy/prometheus/alerts.yaml (test/integration/ops.alerts.test.ts).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# PostgreSQL 16 to 18 come from Maven Central as a jar holding a .txz (stack/postgres-binaries.ts).
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
if [ ${#need[@]} -eq 0 ]; then
  echo "prerequisites: postgresql-15, java, maven, a C++ toolchain, promtool, jemalloc, unzip and xz are present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "prerequisites: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${need[@]}"
