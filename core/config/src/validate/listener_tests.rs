//! A listener's path rules (`normalize_path`, `merge_slashes`, `escaped_slashes`) and
//! `forward_client_cert`.

use ringside_codec::{EscapedSlashes, PathRules};

use super::tests::{errors, ok};
use crate::{ForwardClientCert, ListenerKind};

const CLUSTER: &str = "[[clusters]]\nname = \"c\"\nendpoints = [ \"127.0.0.1:1\" ]\n";

fn rules(keys: &str) -> PathRules {
    let config = ok(&format!(
        "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n{keys}\n{CLUSTER}"
    ));
    match &config.listeners[0].kind {
        ListenerKind::Http(h) => h.limits.path,
        ListenerKind::Tcp { .. } => panic!("not http"),
    }
}

#[test]
fn path_rules_are_read_and_default_to_none() {
    assert_eq!(rules(""), PathRules::NONE);
    assert_eq!(
        rules("normalize_path = true\nmerge_slashes = true\nescaped_slashes = \"unescape\""),
        PathRules {
            normalize: true,
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Unescape,
        }
    );
    assert_eq!(
        rules("escaped_slashes = \"reject\"").escaped_slashes,
        EscapedSlashes::Reject
    );
    assert_eq!(
        rules("escaped_slashes = \"keep\"\nnormalize_path = false"),
        PathRules::NONE
    );
    // Both protocols parse with them.
    let c = ok(&format!(
        "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\nnormalize_path = true\n{CLUSTER}"
    ));
    let ListenerKind::Http(h) = &c.listeners[0].kind else {
        panic!("not http")
    };
    assert!(h.limits.codec().path.normalize);
}

#[test]
fn path_rules_are_refused_with_their_path() {
    assert_eq!(
        errors(&format!(
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\nescaped_slashes = \"decode\"\n{CLUSTER}"
        )),
        ["listeners[0].escaped_slashes: unknown variant \"decode\", expected one of \"keep\", \"reject\", \"unescape\""]
    );
    assert_eq!(
        errors(&format!(
            "[[listeners]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"c\"\nnormalize_path = true\nmerge_slashes = false\n{CLUSTER}"
        )),
        [
            "listeners[0].normalize_path: only valid on protocol = \"http\" listeners",
            "listeners[0].merge_slashes: only valid on protocol = \"http\" listeners",
        ]
    );
}

#[test]
fn forward_client_cert_is_read_and_defaults_to_sanitize_set() {
    let mode = |keys: &str| {
        let config = ok(&format!(
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n{keys}\n{CLUSTER}"
        ));
        match &config.listeners[0].kind {
            ListenerKind::Http(h) => h.forward_client_cert,
            ListenerKind::Tcp { .. } => panic!("not http"),
        }
    };
    assert_eq!(mode(""), ForwardClientCert::SanitizeSet);
    for (value, want) in [
        ("sanitize", ForwardClientCert::Sanitize),
        ("sanitize_set", ForwardClientCert::SanitizeSet),
        ("append_forward", ForwardClientCert::AppendForward),
        ("forward_only", ForwardClientCert::ForwardOnly),
        ("always_forward_only", ForwardClientCert::AlwaysForwardOnly),
    ] {
        assert_eq!(mode(&format!("forward_client_cert = \"{value}\"")), want);
    }
    assert_eq!(
        errors(&format!(
            "[[listeners]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"c\"\nforward_client_cert = \"sanitize\"\n{CLUSTER}"
        )),
        ["listeners[0].forward_client_cert: only valid on protocol = \"http\" listeners"]
    );
}

#[test]
fn client_cert_details_are_read_and_default_to_the_uri() {
    let details = |keys: &str| {
        let config = ok(&format!(
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\n{keys}\n{CLUSTER}"
        ));
        match &config.listeners[0].kind {
            ListenerKind::Http(h) => h.cert_details,
            ListenerKind::Tcp { .. } => panic!("not http"),
        }
    };
    let d = details("");
    assert!(d.uri && !(d.by || d.hash || d.cert || d.chain || d.subject || d.dns));
    let d = details("client_cert_details = [ \"dns\", \"by\", \"hash\", \"subject\" ]");
    assert!(d.by && d.hash && d.subject && d.dns && !(d.uri || d.cert || d.chain));
    let d = details("client_cert_details = [ \"cert\", \"chain\", \"uri\" ]");
    assert!(d.cert && d.chain && d.uri && !(d.by || d.hash || d.subject || d.dns));
    assert_eq!(
        errors(&format!(
            "[[listeners]]\nname = \"l\"\nbind = \"127.0.0.1:0\"\nclient_cert_details = []\n\
             [[listeners]]\nname = \"m\"\nbind = \"127.0.0.1:0\"\nclient_cert_details = [ \"uri\", \"hash\", \"uri\", \"issuer\" ]\n\
             [[listeners]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"c\"\nclient_cert_details = [ \"uri\" ]\n\
             [[listeners]]\nname = \"n\"\nbind = \"127.0.0.1:0\"\nclient_cert_details = [ \"uri\", \"hash\", \"uri\" ]\n{CLUSTER}"
        )),
        [
            "listeners[0].client_cert_details: empty: omit it for the default [\"uri\"]",
            "listeners[1].client_cert_details[3]: unknown variant \"issuer\", expected one of \"by\", \"hash\", \"cert\", \"chain\", \"subject\", \"uri\", \"dns\"",
            "listeners[2].client_cert_details: only valid on protocol = \"http\" listeners",
            "listeners[3].client_cert_details[2]: duplicate detail uri",
        ]
    );
}
