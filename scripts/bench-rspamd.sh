#!/usr/bin/env bash
# Starts rspamd 3.x (Debian `rspamd`) as a milter with DKIM signing only, for `scripts/bench-e2e.sh` (e).
# usage: bench-rspamd.sh DIR KEY   — makes DIR/rspamd with a config that loads only the dkim_signing plugin (no
# rules, no other modules, no Redis) and a self-scanning rspamd_proxy in milter mode on DIR/rspamd/milter.sock,
# one process per core; waits until the socket is there. The pid file is DIR/rspamd/rspamd.pid.
set -euo pipefail
dir=$1/rspamd
key=$2
mkdir -p "$dir/plugins"
ln -sf /usr/share/rspamd/plugins/dkim_signing.lua "$dir/plugins/"
cat >"$dir/rspamd.conf" <<CF
options {
    pidfile = "$dir/rspamd.pid";
    local_addrs = "127.0.0.0/8";
    # The C dkim module provides the signing function dkim_signing.lua calls; nothing else is loaded.
    filters = "dkim";
    dns { nameserver = ["127.0.0.1:53"]; timeout = 1s; retransmits = 1; }
}
logging { type = "file"; filename = "$dir/rspamd.log"; level = "warning"; }
modules { path = "$dir/plugins"; }
worker "rspamd_proxy" {
    bind_socket = "$dir/milter.sock mode=0666";
    milter = yes;
    timeout = 120s;
    upstream "local" { default = yes; self_scan = yes; }
    count = $(nproc);
}
# Verification of local mail off: only signing is measured.
dkim { check_local = false; check_authed = false; }
dkim_signing {
    domain { example.com { path = "$key"; selector = "rsa"; } }
    sign_local = true;
    sign_authenticated = true;
    allow_hdrfrom_mismatch = true;
    allow_username_mismatch = true;
    use_domain = "header";
    use_esld = false;
    sign_headers = "from:to:subject:date:message-id:mime-version:content-type";
}
CF
chown -R _rspamd:_rspamd "$dir"
rspamd -u _rspamd -g _rspamd -c "$dir/rspamd.conf" --var DBDIR="$dir" --var RUNDIR="$dir" --var LOGDIR="$dir"
for _ in $(seq 100); do [ -S "$dir/milter.sock" ] && [ -s "$dir/rspamd.pid" ] && exit 0; sleep 0.1; done
echo "rspamd did not start:" >&2
cat "$dir/rspamd.log" >&2
exit 1
