#!/usr/bin/env bash
# Verify every DKIM-Signature of each message with OpenDKIM's own verifier (independent of Signet),
# offline: `opendkim -t` in verify mode with TestPublicKeys. OpenDKIM exits 0 whatever the result,
# so the Authentication-Results it prints is what we read.
# usage: opendkim_verify.sh KEYFILE MESSAGE...   prints: file, d=, s=, a=, result, detail
set -euo pipefail
keyfile=$(readlink -f "$1"); shift
conf=$(mktemp)
trap 'rm -f "$conf"' EXIT
printf 'Mode v\nTestPublicKeys %s\nSyslog no\nMinimumKeyBits 1024\n' "$keyfile" > "$conf"
for path in "$@"; do
    out=$(opendkim -t "$path" -vv -x "$conf" 2>/dev/null || true)
    # Each `dkim=RESULT ... header.d=D ... header.a=A header.s=S` is one signature.
    results=$(printf '%s\n' "$out" | grep -o 'dkim=[a-z]*[^;]*' || true)
    if [ -z "$results" ]; then
        printf '%s\t-\t-\t-\tnone\tno result from opendkim\n' "$path"
        continue
    fi
    while IFS= read -r r; do
        result=$(sed -E 's/^dkim=([a-z]+).*/\1/' <<<"$r")
        d=$(grep -o 'header.d=[^ ;]*' <<<"$r" | cut -d= -f2 || echo -)
        s=$(grep -o 'header.s=[^ ;]*' <<<"$r" | cut -d= -f2 || echo -)
        a=$(grep -o 'header.a=[^ ;]*' <<<"$r" | cut -d= -f2 || echo -)
        detail=$(grep -o 'reason="[^"]*"' <<<"$r" || true)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "${d:--}" "${s:--}" "${a:--}" "$result" "$detail"
    done <<<"$results"
done
