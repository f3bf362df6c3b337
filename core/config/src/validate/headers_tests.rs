//! Header edits (`*_headers_to_add`, `*_headers_to_remove`) and optional route names.

use super::headers::{header_name, template};
use super::tests::errors;
use crate::headers::{HeaderAction, HeaderAdd, HeaderEdits, ValuePart, ValueTemplate};
use crate::model::{Config, ListenerKind};
use crate::parse;

fn ok(text: &str) -> Config {
    parse(&super::tests::with_listener(text))
        .unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

fn http(c: &Config, listener: usize) -> &crate::HttpListener {
    match &c.listeners[listener].kind {
        ListenerKind::Http(h) => h,
        ListenerKind::Tcp { .. } => panic!("listener {listener} is not http"),
    }
}

fn lit(s: &str) -> ValuePart {
    ValuePart::Literal(s.as_bytes().to_vec())
}

fn parts(value: &str) -> Vec<ValuePart> {
    match template(value) {
        Ok(t) => t.parts,
        Err(e) => panic!("{value:?} rejected: {e}"),
    }
}

/// One listener `l` and one route on it with `route_keys`.
fn route_with(route_keys: &str) -> String {
    format!(
        "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n\
         [[routes]]\nlistener = \"l\"\ndirect_response = {{ status = 200 }}\n{route_keys}\n"
    )
}

// ---- value templates ----

#[test]
fn a_template_without_substitutions_is_one_literal() {
    assert_eq!(parts("ringside"), [lit("ringside")]);
    assert_eq!(parts("a b\tc"), [lit("a b\tc")]);
    let t = template("text/plain; q=0.5").expect("valid");
    assert_eq!(t.literal(), Some(&b"text/plain; q=0.5"[..]));
}

#[test]
fn every_substitution_is_parsed() {
    assert_eq!(
        parts("%REQ(X-User)%"),
        [ValuePart::RequestHeader("x-user".into())],
        "the header name is lower-cased"
    );
    assert_eq!(
        parts("%DOWNSTREAM_REMOTE_ADDRESS%"),
        [ValuePart::DownstreamRemoteAddress]
    );
    assert_eq!(parts("%REQUEST_ID%"), [ValuePart::RequestId]);
    assert_eq!(
        parts("id=%REQUEST_ID%;from=%DOWNSTREAM_REMOTE_ADDRESS%;u=%REQ(x-user)%%REQ(x-b)%."),
        [
            lit("id="),
            ValuePart::RequestId,
            lit(";from="),
            ValuePart::DownstreamRemoteAddress,
            lit(";u="),
            ValuePart::RequestHeader("x-user".into()),
            ValuePart::RequestHeader("x-b".into()),
            lit("."),
        ]
    );
}

#[test]
fn a_double_percent_is_a_literal_percent() {
    assert_eq!(parts("100%%"), [lit("100%")]);
    assert_eq!(parts("%%"), [lit("%")]);
    assert_eq!(parts("%%%%"), [lit("%%")]);
    // Literal text around `%%` stays one part.
    assert_eq!(parts("a%%b"), [lit("a%b")]);
    assert_eq!(
        parts("%%%REQUEST_ID%%%"),
        [lit("%"), ValuePart::RequestId, lit("%")]
    );
    // `%%` is read first: this is `%`, `REQUEST_ID`, then a lone `%`.
    assert!(template("%%REQUEST_ID%").is_err());
}

#[test]
fn bad_templates_name_the_bad_token() {
    let subs = "substitutions are %REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS%, %REQUEST_ID%, or %% for a literal %";
    let cases = [
        (
            "%UPSTREAM_HOST%",
            format!("unknown substitution \"%UPSTREAM_HOST%\" in header value \"%UPSTREAM_HOST%\": {subs}"),
        ),
        (
            "a %req(x)% b",
            format!("unknown substitution \"%req(x)%\" in header value \"a %req(x)% b\": {subs}"),
        ),
        (
            "%REQ(x)",
            format!("unterminated \"%\" in header value \"%REQ(x)\": {subs}"),
        ),
        (
            "50%",
            format!("unterminated \"%\" in header value \"50%\": {subs}"),
        ),
        (
            "%REQ(x):10%",
            format!("unknown substitution \"%REQ(x):10%\" in header value \"%REQ(x):10%\": {subs}"),
        ),
        (
            "%REQ(a b)%",
            "invalid header name \"a b\" in \"%REQ(a b)%\": must be an HTTP token such as \"x-user\"".to_owned(),
        ),
        (
            "%REQ()%",
            "invalid header name \"\" in \"%REQ()%\": must be an HTTP token such as \"x-user\"".to_owned(),
        ),
        (
            "%REQ(:authority)%",
            "invalid header name \":authority\" in \"%REQ(:authority)%\": must be an HTTP token such as \"x-user\"".to_owned(),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(template(value), Err(expected), "for {value:?}");
    }
}

#[test]
fn template_literals_are_visible_ascii_spaces_and_tabs() {
    for bad in ["a\r\nx-injected: 1", "a\nb", "a\0b", "a\x7fb", "a\x01b"] {
        let e = template(bad).expect_err(bad);
        assert!(e.starts_with("invalid character "), "{bad:?}: {e}");
    }
    assert_eq!(
        template("a\r\nb"),
        Err("invalid character '\\r' in header value \"a\\r\\nb\": only visible ASCII characters, spaces and tabs are allowed".into())
    );
    assert_eq!(
        template("café"),
        Err("invalid character 'é' in header value \"café\": only visible ASCII characters, spaces and tabs are allowed".into())
    );
    for bad in [" a", "a ", "\ta", "a\t", " %REQUEST_ID%"] {
        assert_eq!(
            template(bad),
            Err(format!(
                "header value {bad:?} has leading or trailing whitespace, which a header value never has"
            ))
        );
    }
    assert_eq!(
        template(""),
        Err("empty value: a header whose value renders empty is not added (to remove a header, use the *_headers_to_remove keys)".into())
    );
}

// ---- names ----

#[test]
fn names_are_tokens_stored_lower_case() {
    assert_eq!(
        header_name("X-Served-By", "add").as_deref(),
        Ok("x-served-by")
    );
    assert_eq!(header_name("x_env", "add").as_deref(), Ok("x_env"));
    assert_eq!(
        header_name("x env", "add"),
        Err("invalid header name \"x env\": must be an HTTP token such as \"x-env\"".into())
    );
    assert_eq!(
        header_name("x-a:", "remove"),
        Err("invalid header name \"x-a:\": must be an HTTP token such as \"x-env\"".into())
    );
    assert_eq!(
        header_name("", "add"),
        Err("header name must not be empty".into())
    );
}

#[test]
fn names_ringside_sets_itself_are_refused_with_the_reason() {
    let hop = "a hop-by-hop header describes one connection, and ringside writes its own on each";
    let framing = "it frames the message body, and ringside frames every message it sends itself";
    let proxy = "proxy-* headers are hop-by-hop: they describe one connection, and ringside writes its own on each";
    let cases = [
        ("Connection", hop),
        ("keep-alive", hop),
        ("TE", hop),
        ("upgrade", hop),
        ("proxy-connection", proxy),
        ("Proxy-Authorization", proxy),
        ("proxy-anything", proxy),
        ("content-length", framing),
        ("Transfer-Encoding", framing),
        ("trailer", framing),
        ("Host", "it is set from the request's authority"),
    ];
    for verb in ["add", "remove"] {
        for (name, why) in cases {
            let lower = name.to_ascii_lowercase();
            assert_eq!(
                header_name(name, verb),
                Err(format!("cannot {verb} {lower:?}: {why}"))
            );
        }
        assert_eq!(
            header_name(":authority", verb),
            Err(format!("cannot {verb} \":authority\": pseudo-headers are HTTP/2's request and status lines, which ringside writes itself"))
        );
    }
    // Near misses are ordinary headers.
    for fine in [
        "proxy",
        "x-proxy-id",
        "hosts",
        "x-connection",
        "tes",
        "trailers",
    ] {
        assert!(header_name(fine, "add").is_ok(), "{fine}");
    }
}

// ---- whole files ----

#[test]
fn listener_and_route_edits_reach_the_model() {
    let c = ok(r#"
[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"
request_headers_to_add = [ { name = "X-Env", value = "prod", action = "overwrite" } ]
request_headers_to_remove = [ "X-Debug" ]
response_headers_to_add = [ { name = "x-served-by", value = "ringside" } ]
response_headers_to_remove = [ "x-powered-by", "server" ]

[[routes]]
listener = "inbound"
name = "api"
cluster = "api"
request_headers_to_add = [
  { name = "x-client", value = "%DOWNSTREAM_REMOTE_ADDRESS%", action = "add_if_absent" },
  { name = "x-trace", value = "%REQUEST_ID%/%REQ(X-User)%", action = "append" },
]
response_headers_to_add = [ { name = "x-route", value = "api" } ]

[[routes]]
listener = "inbound"
name = "rest"
cluster = "api"

[[clusters]]
name = "api"
"#);
    let h = http(&c, 0);
    let literal = |v: &str| ValueTemplate {
        parts: vec![lit(v)],
    };
    assert_eq!(
        h.headers,
        HeaderEdits::new(
            vec![HeaderAdd {
                name: "x-env".into(),
                value: literal("prod"),
                action: HeaderAction::Overwrite,
            }],
            vec!["x-debug".into()],
            vec![HeaderAdd {
                name: "x-served-by".into(),
                value: literal("ringside"),
                action: HeaderAction::Append,
            }],
            vec!["x-powered-by".into(), "server".into()],
        )
    );
    let api = &h.routes[0].headers;
    assert_eq!(
        api.request_add,
        [
            HeaderAdd {
                name: "x-client".into(),
                value: ValueTemplate {
                    parts: vec![ValuePart::DownstreamRemoteAddress]
                },
                action: HeaderAction::AddIfAbsent,
            },
            HeaderAdd {
                name: "x-trace".into(),
                value: ValueTemplate {
                    parts: vec![
                        ValuePart::RequestId,
                        lit("/"),
                        ValuePart::RequestHeader("x-user".into()),
                    ]
                },
                action: HeaderAction::Append,
            },
        ]
    );
    assert!(api.request_remove.is_empty() && api.response_remove.is_empty());
    assert_eq!(
        api.response_add,
        [HeaderAdd {
            name: "x-route".into(),
            value: literal("api"),
            action: HeaderAction::Append,
        }],
        "action defaults to append"
    );
    assert!(h.routes[1].headers.is_empty(), "no keys, no edits");
}

#[test]
fn substitutions_are_allowed_on_the_response_side() {
    let c = ok(&route_with(
        r#"response_headers_to_add = [ { name = "x-echo", value = "%REQ(x-user)% %REQUEST_ID% %DOWNSTREAM_REMOTE_ADDRESS%" } ]"#,
    ));
    let add = &http(&c, 0).routes[0].headers.response_add[0];
    assert_eq!(add.value.parts.len(), 5);
    assert_eq!(add.value.literal(), None);
}

#[test]
fn empty_lists_are_no_edits() {
    let c = ok(&route_with(
        "request_headers_to_add = []\nrequest_headers_to_remove = []\nresponse_headers_to_add = []\nresponse_headers_to_remove = []",
    ));
    assert!(http(&c, 0).routes[0].headers.is_empty());
}

#[test]
fn route_mistakes_are_reported_with_their_paths() {
    let text = route_with(
        r#"request_headers_to_add = [
  { name = "x-ok", value = "1" },
  { name = "Connection", value = "close" },
  { name = "x bad", value = "%NOPE%" },
  { name = ":path", value = "/" },
]
request_headers_to_remove = [ "x-debug", "host", "X-Debug", "" ]
response_headers_to_add = [ { name = "content-length", value = "0" }, { name = "x-a", value = "50%" } ]
response_headers_to_remove = [ "transfer-encoding", "proxy-authenticate" ]"#,
    );
    assert_eq!(
        errors(&text),
        [
            "routes[0].request_headers_to_add[1].name: cannot add \"connection\": a hop-by-hop header describes one connection, and ringside writes its own on each",
            "routes[0].request_headers_to_add[2].name: invalid header name \"x bad\": must be an HTTP token such as \"x-env\"",
            "routes[0].request_headers_to_add[2].value: unknown substitution \"%NOPE%\" in header value \"%NOPE%\": substitutions are %REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS%, %REQUEST_ID%, or %% for a literal %",
            "routes[0].request_headers_to_add[3].name: cannot add \":path\": pseudo-headers are HTTP/2's request and status lines, which ringside writes itself",
            "routes[0].request_headers_to_remove[1]: cannot remove \"host\": it is set from the request's authority",
            "routes[0].request_headers_to_remove[2]: header \"x-debug\" listed twice (also request_headers_to_remove[0]; header names are case-insensitive)",
            "routes[0].request_headers_to_remove[3]: header name must not be empty",
            "routes[0].response_headers_to_add[0].name: cannot add \"content-length\": it frames the message body, and ringside frames every message it sends itself",
            "routes[0].response_headers_to_add[1].value: unterminated \"%\" in header value \"50%\": substitutions are %REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS%, %REQUEST_ID%, or %% for a literal %",
            "routes[0].response_headers_to_remove[0]: cannot remove \"transfer-encoding\": it frames the message body, and ringside frames every message it sends itself",
            "routes[0].response_headers_to_remove[1]: cannot remove \"proxy-authenticate\": proxy-* headers are hop-by-hop: they describe one connection, and ringside writes its own on each",
        ]
    );
}

#[test]
fn listener_mistakes_are_reported_with_their_paths() {
    let text = r#"
[[listeners]]
name = "a"
bind = "127.0.0.1:0"

[[listeners]]
name = "b"
bind = "127.0.0.1:0"
request_headers_to_add = [ { name = "x-env", value = " prod" } ]
response_headers_to_remove = [ "x-a", "x-b", "X-A" ]
"#;
    assert_eq!(
        errors(text),
        [
            "listeners[1].request_headers_to_add[0].value: header value \" prod\" has leading or trailing whitespace, which a header value never has",
            "listeners[1].response_headers_to_remove[2]: header \"x-a\" listed twice (also response_headers_to_remove[0]; header names are case-insensitive)",
        ]
    );
}

#[test]
fn edits_on_a_tcp_listener_are_errors() {
    let text = r#"
[[listeners]]
name = "t"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "c"
request_headers_to_add = [ { name = "x-env", value = "prod" } ]
request_headers_to_remove = [ "x-debug" ]
response_headers_to_add = [ { name = "x-served-by", value = "ringside" } ]
response_headers_to_remove = [ "x-powered-by" ]

[[clusters]]
name = "c"
"#;
    assert_eq!(
        errors(text),
        [
            "listeners[0].request_headers_to_add: only valid on protocol = \"http\" listeners",
            "listeners[0].request_headers_to_remove: only valid on protocol = \"http\" listeners",
            "listeners[0].response_headers_to_add: only valid on protocol = \"http\" listeners",
            "listeners[0].response_headers_to_remove: only valid on protocol = \"http\" listeners",
        ]
    );
}

#[test]
fn structural_mistakes_in_edits_carry_their_path() {
    assert_eq!(
        errors(&route_with(
            r#"request_headers_to_add = [ { name = "x-a", value = "1", action = "replace" } ]"#
        )),
        ["routes[0].request_headers_to_add[0].action: unknown variant \"replace\", expected one of \"append\", \"add_if_absent\", \"overwrite\""]
    );
    assert_eq!(
        errors(&route_with(
            r#"response_headers_to_add = [ { name = "x-a" } ]"#
        )),
        ["routes[0].response_headers_to_add[0]: missing field \"value\""]
    );
    let e = errors(&route_with(
        r#"request_headers_to_add = [ { name = "x-a", value = "1", append = true } ]"#,
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("routes[0].request_headers_to_add[0].append: unknown field \"append\""),
        "{e:?}"
    );
    assert_eq!(
        errors(&route_with(r#"request_headers_to_remove = "x-a""#)),
        ["routes[0].request_headers_to_remove: invalid type: string \"x-a\", expected an array"]
    );
}

/// `ringside check` prints each error of `load_file` as `FILE: path: message`: the edits'
/// errors come out there with their path and reason like any other.
#[test]
fn ringside_check_reports_edit_errors_with_path_and_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ringside.toml");
    std::fs::write(
        &file,
        route_with(r#"request_headers_to_add = [ { name = "Upgrade", value = "h2c" } ]"#),
    )
    .expect("write");
    let e = crate::load_file(&file).expect_err("invalid");
    assert_eq!(
        e.to_string(),
        "routes[0].request_headers_to_add[0].name: cannot add \"upgrade\": a hop-by-hop header describes one connection, and ringside writes its own on each"
    );
}

// ---- route names ----

#[test]
fn unnamed_routes_are_named_after_their_listener_and_position() {
    let c = ok(r#"
[[listeners]]
name = "inbound"
bind = "127.0.0.1:0"
[[listeners]]
name = "edge"
bind = "127.0.0.1:0"

[[routes]]
listener = "inbound"
direct_response = { status = 200 }
[[routes]]
listener = "edge"
direct_response = { status = 200 }
[[routes]]
listener = "inbound"
name = "api"
direct_response = { status = 200 }
[[routes]]
listener = "inbound"
direct_response = { status = 200 }
[[routes]]
listener = "edge"
direct_response = { status = 200 }
"#);
    let names =
        |l: usize| -> Vec<&str> { http(&c, l).routes.iter().map(|r| r.name.as_str()).collect() };
    // A named route keeps its position: the unnamed one after it is the third.
    assert_eq!(names(0), ["inbound/0", "api", "inbound/2"]);
    assert_eq!(names(1), ["edge/0", "edge/1"]);
}

#[test]
fn route_names_stay_unique_per_listener() {
    let base = "[[listeners]]\nname = \"inbound\"\nbind = \"127.0.0.1:0\"\n\
                [[listeners]]\nname = \"edge\"\nbind = \"127.0.0.1:0\"\n";
    let route = |listener: &str, name: Option<&str>| {
        let name = name.map_or(String::new(), |n| format!("name = {n:?}\n"));
        format!("[[routes]]\nlistener = {listener:?}\n{name}direct_response = {{ status = 200 }}\n")
    };
    // The same name on two listeners is fine.
    ok(&format!(
        "{base}{}{}",
        route("inbound", Some("a")),
        route("edge", Some("a"))
    ));
    assert_eq!(
        errors(&format!(
            "{base}{}{}{}",
            route("inbound", Some("a")),
            route("inbound", None),
            route("inbound", Some("a"))
        )),
        ["routes[2].name: duplicate route name \"a\" on listener \"inbound\" (also routes[0].name)"]
    );
    // A written name cannot take an unnamed route's name: `/` is not a name character, and
    // the collision is reported too, naming both routes.
    let reserved = "invalid name \"inbound/0\": use 1 to 128 characters among A-Z a-z 0-9 - _ . (\"/\" is kept for the names of unnamed routes, LISTENER/INDEX)";
    assert_eq!(
        errors(&format!(
            "{base}{}{}",
            route("inbound", None),
            route("inbound", Some("inbound/0"))
        )),
        [
            "routes[1].name: duplicate route name \"inbound/0\" on listener \"inbound\" (also routes[0], unnamed)".to_owned(),
            format!("routes[1].name: {reserved}"),
        ]
    );
    assert_eq!(
        errors(&format!(
            "{base}{}{}",
            route("inbound", Some("inbound/1")),
            route("inbound", None)
        )),
        [
            "routes[0].name: invalid name \"inbound/1\": use 1 to 128 characters among A-Z a-z 0-9 - _ . (\"/\" is kept for the names of unnamed routes, LISTENER/INDEX)",
            "routes[1]: duplicate route name \"inbound/1\" on listener \"inbound\" (also routes[0].name); this route has no name, so it is named after its position",
        ]
    );
}

#[test]
fn unnamed_routes_on_unknown_listeners_report_the_listener_only() {
    assert_eq!(
        errors("[[routes]]\nlistener = \"nope\"\ndirect_response = { status = 200 }\n"),
        ["routes[0].listener: unknown listener \"nope\""]
    );
}
