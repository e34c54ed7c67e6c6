#!/usr/bin/env bash
# Installs the Debian packages that building and testing Signet need, and only those
# that are missing, so a fresh Debian/Ubuntu machine passes `make test` with nothing
# installed by hand. Runs `apt-get update` once, and only when something is missing.
# `install-deps.sh build` installs only what building needs (the Containerfile's build stage).
set -euo pipefail

packages=(
    # build: system OpenSSL 3 for COpenSSL, jemalloc for the relay's allocator, libxcrypt for AUTH's crypt(3),
    # p11-kit's pkcs11.h for CPKCS11 (the header only: PKCS#11 modules are dlopen()ed)
    pkg-config libssl-dev libjemalloc-dev libcrypt-dev libp11-kit-dev
    # DNS for verification (MailAuth's UnboundResolver)
    libunbound-dev
)
[ "${1:-all}" = build ] || packages+=(
    # independent DKIM verifiers used by the interop tests
    python3 python3-dkim python3-nacl opendkim libmail-dkim-perl libnet-dns-perl
    # authres: dkimpy's arc_verify needs it (ARC interop tests) and it checks our Authentication-Results parser
    python3-authres
    # used by the tests and `make bench`
    openssl valgrind
    # real SMTP peers for the relay end-to-end tests: smtp-sink/smtp-source (postfix) and swaks
    postfix swaks
    # independent SRS implementations for the SRS interop tests: Mail::SRS and postsrsd (libsrs2)
    libmail-srs-perl postsrsd
    # independent SPF implementation for the SPF interop test: pyspf
    python3-spf
    # independent DMARC evaluator for the MailAuth interop tests: Mail::DMARC
    libmail-dmarc-perl
    # swaks --tls (installed without recommends, so named here)
    libnet-ssleay-perl libio-socket-ssl-perl
    # a PKCS#11 token for the pkcs11 signing backend's tests (softhsm2-util makes tokens and imports keys)
    softhsm2
    # promtool (`check metrics` on the live /metrics, `check rules` on k8s/) for the observability tests
    prometheus
    # a real authoritative DNS server and DNSSEC zone signing for the libunbound tests
    nsd ldnsutils
    # `make k8s-check`: a virtualenv for the pinned kubernetes-validate
    python3-venv
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix is only a test peer (smtp-sink, smtp-source, a throwaway instance): no system mail setup.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
