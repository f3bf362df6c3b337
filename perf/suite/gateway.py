"""The gateway targets' credentials: one RSA key, its JWKS, one RS256 token and one API key,
made fresh for each run with the openssl command line and the standard library (no JWT
library is needed here).

The token: `{"alg": "RS256", "kid": "perf"}` over `{"iss": ISSUER, "aud": AUDIENCE,
"sub": SUBJECT, "iat": now, "nbf": now - 60, "exp": now + 2 days}`, signed with
`openssl dgst -sha256 -sign` (PKCS#1 v1.5: the raw signature is the JWS one). The JWKS holds
the public key (`n` from `openssl rsa -modulus`, `e` 65537). The API key is 24 random bytes
in hex; the ringside templates hold only its SHA-256.

The gateway templates (`ringside-gateway.toml`, `envoy-gateway.yaml`) take ${jwks},
${api_key}, ${api_key_sha256}, ${issuer}, ${audience}, ${subject} and ${cors_origin}; every
target of a run with a gateway target gets `headers()` on each request (see docs/perf.md,
"Gateway stages").
"""

import base64
import hashlib
import json
import secrets
import subprocess
import time

ISSUER = "https://id.perf.example"
AUDIENCE = "perf-api"
SUBJECT = "client:perf"
CORS_ORIGIN = "https://app.example.com"
KID = "perf"


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Credentials:
    def __init__(self, openssl, work):
        key = work / "jwt-signing-key.pem"
        subprocess.run([openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", str(key)],
                       check=True, capture_output=True, timeout=60)
        modulus = subprocess.run([openssl, "rsa", "-in", str(key), "-noout", "-modulus"],
                                 check=True, capture_output=True, text=True, timeout=60)
        n = bytes.fromhex(modulus.stdout.strip().split("=", 1)[1])
        self.jwks = json.dumps({"keys": [{"kty": "RSA", "kid": KID, "use": "sig",
                                          "alg": "RS256", "n": _b64(n), "e": "AQAB"}]},
                               separators=(",", ":"))
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": KID}
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now,
                  "nbf": now - 60, "exp": now + 2 * 86400}
        signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run([openssl, "dgst", "-sha256", "-sign", str(key)],
                             input=signing_input.encode(), check=True, capture_output=True,
                             timeout=60).stdout
        self.token = signing_input + "." + _b64(sig)
        self.api_key = secrets.token_hex(24)
        self.api_key_sha256 = hashlib.sha256(self.api_key.encode()).hexdigest()

    def values(self):
        """The template values."""
        return {"jwks": self.jwks, "api_key": self.api_key,
                "api_key_sha256": self.api_key_sha256, "issuer": ISSUER,
                "audience": AUDIENCE, "subject": SUBJECT, "cors_origin": CORS_ORIGIN}

    def headers(self):
        """What every request of the run carries."""
        return [("Authorization", "Bearer " + self.token), ("x-api-key", self.api_key),
                ("Origin", CORS_ORIGIN)]

    def describe(self):
        """The headers for the report, the secrets shortened."""
        return [f"Authorization: Bearer <RS256 JWT, {len(self.token)} bytes, sub {SUBJECT}>",
                f"x-api-key: <{len(self.api_key)} hex characters>", f"Origin: {CORS_ORIGIN}"]
