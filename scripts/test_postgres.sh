#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the PostgreSQL source's tests (crates/ember-data/tests/
# postgres.rs, crates/ember-cli/tests/postgres.rs).
#
#   eval "$(scripts/test_postgres.sh start)"   # prints the exports the tests read
#   cargo test --release -p ember-cli -p ember-data --test postgres
#   scripts/test_postgres.sh stop
#
# The cluster lives in $EMBER_PG_DIR (default /tmp/ember-pg): data, log, and the Unix socket.
# It listens on that socket (trust: the tests connect as `postgres` without a password) and on
# 127.0.0.1:$EMBER_PG_PORT (default 5433) with scram-sha-256 and TLS (a self-signed CA made
# here, ca.crt), so that the tests can check password and TLS logins. PostgreSQL refuses to
# run as root: as root the server runs as the `postgres` user. Installs PostgreSQL from
# Debian when initdb is absent (as root only).
set -euo pipefail
dir=${EMBER_PG_DIR:-/tmp/ember-pg}
port=${EMBER_PG_PORT:-5433}

bin_dir() {
    if command -v initdb > /dev/null && command -v pg_ctl > /dev/null; then
        dirname "$(command -v pg_ctl)"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
    if [ -z "$found" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
        found=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
    fi
    [ -n "$found" ] || { echo "PostgreSQL (initdb, pg_ctl) not found" >&2; exit 1; }
    echo "$found"
}

# Runs a server program as the owner of the cluster.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A CA and a server certificate for 127.0.0.1 and localhost, valid a day.
make_certificates() {
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ember-test-ca \
            -keyout ca.key -out ca.crt 2> /dev/null
        openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
            -keyout server.key -out server.csr 2> /dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
            -extfile san.ext -out server.crt 2> /dev/null
        chmod 600 server.key
    )
}

start() {
    local bin
    bin=$(bin_dir)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 > "$dir/initdb.log"
        if ! command -v openssl > /dev/null && [ "$(id -u)" = 0 ] \
            && command -v apt-get > /dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl > /dev/null
        fi
        if command -v openssl > /dev/null; then
            as_owner bash -c "$(declare -f make_certificates); dir=$dir; make_certificates"
        fi
    fi
    local ssl=()
    [ -f "$dir/server.crt" ] && ssl=(-c ssl=on -c "ssl_cert_file=$dir/server.crt" \
        -c "ssl_key_file=$dir/server.key")
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-k $dir -p $port -c listen_addresses=127.0.0.1 ${ssl[*]}" start > /dev/null
    echo "export EMBER_TEST_POSTGRES_URL='host=$dir port=$port user=postgres dbname=postgres'"
    [ -f "$dir/ca.crt" ] && echo "export EMBER_TEST_POSTGRES_CA='$dir/ca.crt'"
    return 0
}

stop() {
    local bin
    bin=$(bin_dir)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
