//! Requests that could be framed differently here and upstream (request smuggling) are
//! answered 400 and never reach the upstream: not one byte.
//!
//! Each payload goes on its own connection, in one write, so the whole request is in the
//! proxy's buffer when it decides. After the payloads, a valid request proves the origin was
//! reachable all along.

use ringside_tests::*;

fn assert_all_rejected(d: Driver, cases: &[&[u8]]) {
    let o = Origin::echo();
    let p = Proxy::start(d, &basic_config(&[o.addr()], Extra::default()));
    for case in cases {
        let mut c = Client::connect(p.addr("in"));
        let r = c.request(case);
        assert_eq!(
            r.status,
            400,
            "for {:?}: {}",
            String::from_utf8_lossy(case),
            r.text()
        );
        assert!(
            r.closes(),
            "a smuggling attempt closes the connection: {}",
            r.head
        );
        assert_eq!(
            o.bytes_received(),
            0,
            "the origin received bytes after {:?}",
            String::from_utf8_lossy(case)
        );
    }
    let mut c = Client::connect(p.addr("in"));
    let r = c.request(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "control request"
    );
    let seen: Vec<String> = o.requests().iter().map(|r| r.head.clone()).collect();
    assert_eq!(
        seen.len(),
        1,
        "only the control request reached the origin: {seen:#?}"
    );
}

both_drivers!(
    fn content_length_with_transfer_encoding(d) {
        assert_all_rejected(
            d,
            &[
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ],
        );
    }
);

both_drivers!(
    fn duplicate_content_length(d) {
        assert_all_rejected(
            d,
            &[
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello",
            ],
        );
    }
);

both_drivers!(
    fn invalid_content_length(d) {
        assert_all_rejected(
            d,
            &[
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5 5\r\n\r\nhello",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            ],
        );
    }
);

both_drivers!(
    fn transfer_encoding_not_ending_in_chunked(d) {
        assert_all_rejected(
            d,
            &[
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n",
                // HTTP/1.0 has no chunked coding.
                b"POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ],
        );
    }
);

both_drivers!(
    fn bare_lf_in_the_head(d) {
        assert_all_rejected(
            d,
            &[
                b"GET / HTTP/1.1\nHost: t\n\n",
                b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nX: y\nContent-Length: 5\r\n\r\nhello",
            ],
        );
    }
);

both_drivers!(
    fn bare_cr_in_the_head(d) {
        assert_all_rejected(
            d,
            &[
                b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",
                b"GET / HTTP/1.1\rHost: t\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nX: a\rContent-Length: 5\r\n\r\nhello",
            ],
        );
    }
);

both_drivers!(
    fn whitespace_before_the_colon(d) {
        assert_all_rejected(
            d,
            &[
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost\t: t\r\n\r\n",
            ],
        );
    }
);

both_drivers!(
    fn invalid_chunk_size(d) {
        assert_all_rejected(
            d,
            &[
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            ],
        );
    }
);
