#!/usr/bin/env bash
# Throwaway certificates for trying deploy/gateway-mesh on one machine (never for production:
# the CA key is left beside them). Writes into DIR (default: certs/ beside this script):
#   trust-bundle.crt            the mesh CA
#   identity.crt, identity.key  spiffe://cluster.local/ns/shop/sa/storefront, signed by it
#   public.crt, public.key      shop.example.com and localhost, signed by it
# Then: ringside check --config deploy/gateway-mesh/ringside.toml
set -euo pipefail
dir=${1:-"$(dirname "$0")/certs"}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -days 365 -subj "/CN=gateway-mesh dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out trust-bundle.crt

leaf() { # name, subjectAltName
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$2" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA trust-bundle.crt -CAkey ca.key -CAcreateserial \
        -days 90 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
leaf identity "URI:spiffe://cluster.local/ns/shop/sa/storefront"
leaf public "DNS:shop.example.com,DNS:localhost,IP:127.0.0.1"
chmod 0600 ./*.key
echo "certificates in $PWD"
