#!/usr/bin/env python3
"""Makes signing keys and JSON Web Tokens with PyJWT and cryptography, and prints them as one
JSON line: the tests' tokens come from a real JWT library, signed with real keys made fresh on
every run.

Usage: jwt_tokens.py SPEC

SPEC is JSON:
  {"keys": [{"kid": "rsa1", "kty": "RSA" | "EC" | "EC384" | "OKP"}, ...],
   "tokens": {"NAME": {"key": "rsa1", "alg": "RS256", "claims": {...},
                       "kid": "rsa1" (default: the key's; null: no kid),
                       "unsigned": true (alg "none", no signature)}, ...}}
A claim value "now+N" or "now-N" (a string) becomes the Unix time now plus or minus N seconds.
Prints {"jwks": {"KID": <public JWK>, ...}, "tokens": {"NAME": "<token>", ...}}.
Exits nonzero on a bad SPEC.
"""

import base64
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def make_key(kty):
    if kty == "RSA":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return private, RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    if kty in ("EC", "EC384"):
        curve = ec.SECP256R1() if kty == "EC" else ec.SECP384R1()
        private = ec.generate_private_key(curve)
        return private, ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    if kty == "OKP":
        private = ed25519.Ed25519PrivateKey.generate()
        return private, OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    raise SystemExit("unknown kty %r" % kty)


def resolve(claims, now):
    out = {}
    for name, value in claims.items():
        if isinstance(value, str) and value.startswith("now") and len(value) > 3:
            value = now + int(value[3:])
        elif isinstance(value, dict):
            value = resolve(value, now)
        out[name] = value
    return out


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    spec = json.loads(sys.argv[1])
    now = int(time.time())
    private = {}
    jwks = {}
    for k in spec.get("keys", []):
        key, jwk = make_key(k["kty"])
        jwk["kid"] = k["kid"]
        jwk["use"] = "sig"
        private[k["kid"]] = key
        jwks[k["kid"]] = jwk
    tokens = {}
    for name, t in spec.get("tokens", {}).items():
        claims = resolve(t.get("claims", {}), now)
        kid = t.get("kid", t.get("key"))
        if t.get("unsigned"):
            header = {"alg": "none", "typ": "JWT"}
            body = json.dumps(claims).encode()
            tokens[name] = "%s.%s." % (b64(json.dumps(header).encode()), b64(body))
            continue
        headers = {"kid": kid} if kid is not None else {}
        tokens[name] = jwt.encode(claims, private[t["key"]], algorithm=t["alg"], headers=headers)
    print(json.dumps({"jwks": jwks, "tokens": tokens}))


if __name__ == "__main__":
    main()
