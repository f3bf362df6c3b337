//! The gateway role's callers and counters: `[[consumers]]` and their API keys,
//! `[[jwt_providers]]`, a route's `authn` that admits them, and the `[[redis]]` servers
//! that keep global rate limits.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::FileRateLimit;

/// `routes[].authn` (gateway role): how a request proves who it is. At least one of
/// `api_key` and `jwt`; with both, either credential admits the request (a JWT is looked
/// for first). A request with neither is answered 401 with one `WWW-Authenticate` field
/// holding both challenges (`Bearer realm="<route>", ApiKey realm="<route>"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuthn {
    /// An API key from a header and/or a query parameter; see [`FileApiKeyAuthn`].
    pub api_key: Option<FileApiKeyAuthn>,
    /// Names of `[[jwt_providers]]` whose tokens the route accepts (`[ "corp" ]`), tried in
    /// order. Default: none.
    pub jwt: Option<Vec<String>>,
}

/// `routes[].authn.api_key`: where a request carries its key. A request without a key is
/// answered 401 with `WWW-Authenticate: ApiKey realm="<route>"`, one with an unknown key 401
/// (gRPC: UNAUTHENTICATED); a known key makes the request its consumer's, and the upstream
/// gets `x-consumer-name`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApiKeyAuthn {
    /// The request header holding the key (case-insensitive). Default `"x-api-key"`.
    pub header: Option<String>,
    /// A query parameter that may hold the key instead (its value is percent-decoded), e.g.
    /// `"apikey"`. The header is looked at first. Default: none (a key in the query string
    /// is not accepted).
    pub query: Option<String>,
    /// `false`: forward the credential (header and query parameter) to the upstream.
    /// Default `true`: it is removed.
    pub hide_credentials: Option<bool>,
}

/// `[[consumers]]` (gateway role): one client of the gateway's routes, known by its API
/// keys. A consumer's name goes upstream in `x-consumer-name` and is the `key = "consumer"`
/// of route rate limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConsumer {
    /// Required. Unique among consumers. 1 to 128 characters among `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// The consumer's API keys, each `{ sha256 = "<64 hex digits>" }` (the SHA-256 of the
    /// key, so that the file holds no secret) or `{ key = "..." }`. A key belongs to one
    /// consumer only. Default: none.
    pub api_keys: Option<Vec<FileApiKey>>,
    /// JWT subjects (`sub` claims) that are this consumer: a request with a verified token
    /// whose `sub` is one of them is this consumer's (`[ "client:mobile" ]`). A subject
    /// belongs to one consumer only. A verified token whose `sub` is no consumer's is still
    /// admitted, with no consumer. Default: none.
    pub jwt_subjects: Option<Vec<String>>,
    /// The consumer's own token bucket, for the whole process, taken by each of its
    /// authenticated requests on every route: `{ requests_per_second = 50, burst = 100 }`
    /// (no `key`). Default: none.
    pub rate_limit: Option<FileRateLimit>,
}

/// `[[jwt_providers]]` (gateway role): an issuer of JSON Web Tokens that routes accept
/// (`routes[].authn.jwt`). Accepted algorithms: RS256/384/512, PS256/384/512, ES256/384,
/// EdDSA (Ed25519), and HS256/384/512 only with a shared-secret (`oct`) key written in
/// `jwks`; `alg: none` never. A token must carry `exp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileJwtProvider {
    /// Required. Unique among providers. 1 to 128 characters among `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// Required. The token's `iss` must equal it.
    pub issuer: String,
    /// The token's `aud` (a string or an array) must contain one of these; a token without
    /// `aud` is then refused too (403). Default: none (`aud` is not checked).
    pub audiences: Option<Vec<String>>,
    /// Where to fetch the keys (a JWKS document): an `https://` URI, or `http://` to a
    /// loopback address only. Fetched off the workers at start, every `jwks_refresh_s`, and
    /// when a token names a `kid` the keys lack (at most once per 10 s). A failed fetch keeps
    /// the last good keys. Exactly one of `jwks_uri`, `jwks_file` and `jwks`.
    pub jwks_uri: Option<String>,
    /// A JWKS document in a file, read when the configuration is loaded.
    pub jwks_file: Option<String>,
    /// A JWKS document inline (`jwks = '{"keys": [...]}'`). The one place an `oct`
    /// (shared-secret, HS256) key is accepted.
    pub jwks: Option<String>,
    /// PEM CA certificates that sign the `jwks_uri` server's certificate. Default: the
    /// system's roots.
    pub jwks_ca: Option<String>,
    /// Seconds between two fetches of `jwks_uri`, 1 to 86400. Default 600.
    pub jwks_refresh_s: Option<u64>,
    /// Where a request carries its token, looked at in order: `"header:<name>:<prefix>"`
    /// (the value after the prefix, matched case-insensitively), `"query:<param>"`,
    /// `"cookie:<name>"`. Default `[ "header:authorization:Bearer ", "query:access_token" ]`.
    pub from: Option<Vec<String>>,
    /// `true`: send the token on to the upstream. Default `false`: it is removed (the
    /// header, query parameter or cookie it came in).
    pub forward: Option<bool>,
    /// Claims given to the upstream as request headers: `{ sub = "x-user-id", "org.id" =
    /// "x-org-id" }` (a dotted name reaches into nested objects). String, number and
    /// boolean claims only. A client's own copies of these headers are removed. Default:
    /// none.
    pub claims_to_headers: Option<BTreeMap<String, String>>,
    /// How far `exp` and `nbf` may be off, 0 to 600 seconds. Default 60.
    pub clock_skew_s: Option<u64>,
}

/// One element of `consumers[].api_keys`: exactly one of `sha256` and `key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApiKey {
    /// The SHA-256 digest of the key, 64 hexadecimal digits (e.g. the output of
    /// `printf %s "$KEY" | sha256sum`).
    pub sha256: Option<String>,
    /// The key itself: 1 to 256 visible ASCII characters (no space).
    pub key: Option<String>,
}

/// `[[redis]]` (gateway role): a Redis server that keeps global rate limits (a route's
/// `rate_limit.redis`). Each worker keeps one connection to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRedis {
    /// Required. Referenced by routes' `rate_limit.redis`.
    pub name: String,
    /// Required. The server's `IP:port` (no host names: a worker never resolves names).
    pub address: String,
    /// The longest a connect or a batch of counts may take, 1 to 10000 ms; beyond it the
    /// connection is closed and the limits fail open (or closed) until it is back.
    /// Default 20.
    pub timeout_ms: Option<u64>,
}
