//! Running a cell (send, check, attribute what the origins saw) and the whole table (the
//! matrix, the failures).

use super::*;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::WAIT;

// ---------------------------------------------------------------------------------------
// Running a cell

/// What happened in a cell, for the checks.
pub(crate) struct Exchanged {
    resp: Result<Resp, String>,
    /// The follow-up request on the same connection (when the row asks whether it is
    /// reusable).
    follow: Option<Result<Resp, String>>,
    /// For repeated requests: every response.
    repeats: Vec<Result<Resp, String>>,
    local: SocketAddr,
    elapsed: Duration,
    closed: Option<bool>,
}

/// The request that shows a connection is still usable, and its expected answer.
pub(crate) fn follow_up() -> (Req, u16, &'static str) {
    (Req::get("/direct/200"), 200, "hello")
}

pub(crate) fn tls_for(
    world: &World,
    down: Down,
    cert: bool,
) -> Option<(Arc<rustls::ClientConfig>, &'static str)> {
    let t = &world.tls;
    let config = match (down, cert) {
        (Down::H1Tls, false) => t.h1.clone(),
        (Down::H1Tls, true) => t.h1_cert.clone(),
        (Down::H2Tls, false) => t.h2.clone(),
        (Down::H2Tls, true) => t.h2_cert.clone(),
        _ => return None,
    };
    Some((config, t.server_name))
}

pub(crate) fn exchange_h1(
    world: &World,
    addr: SocketAddr,
    down: Down,
    form: &Form,
    expect: &Expect,
    cell: &str,
) -> Result<Exchanged, String> {
    let (bytes, method, cert) = match form {
        Form::Req(r) => (r.to_h1(cell), r.method, r.client_cert),
        Form::Raw(s) | Form::Stall(s) => (s.replace("$CELL", cell).into_bytes(), "GET", false),
        Form::NotApplicable(_) => return Err("not applicable".into()),
    };
    let mut c = H1Conn::connect(addr, tls_for(world, down, cert))?;
    let started = Instant::now();
    // A proxy that answers early may close its reading side: the response still tells.
    let sent = c.send(&bytes);
    let resp = c.read_response(method).map_err(|e| match &sent {
        Err(s) => format!("{s}; {e}"),
        Ok(()) => e,
    });
    let elapsed = started.elapsed();
    let follow = if expect.reusable && resp.is_ok() {
        let (req, _, _) = follow_up();
        Some(
            c.send(&req.to_h1(cell))
                .and_then(|()| c.read_response(req.method)),
        )
    } else {
        None
    };
    let closed = (expect.closes && resp.is_ok()).then(|| c.closed_within(WAIT));
    Ok(Exchanged {
        resp,
        follow,
        repeats: Vec::new(),
        local: c.local,
        elapsed,
        closed,
    })
}

pub(crate) fn exchange_h2(
    world: &World,
    addr: SocketAddr,
    down: Down,
    req: &Req,
    expect: &Expect,
    cell: &str,
) -> Result<Exchanged, String> {
    let tls = tls_for(world, down, req.client_cert);
    let reusable = expect.reusable;
    client_runtime().block_on(async move {
        let c = H2Conn::connect(addr, tls).await?;
        let started = Instant::now();
        let resp = c.request(req, cell).await;
        let elapsed = started.elapsed();
        let follow = if reusable && resp.is_ok() {
            let (f, _, _) = follow_up();
            Some(c.request(&f, cell).await)
        } else {
            None
        };
        Ok(Exchanged {
            resp,
            follow,
            repeats: Vec::new(),
            local: c.local,
            elapsed,
            closed: None,
        })
    })
}

pub(crate) fn repeat(
    world: &World,
    addr: SocketAddr,
    down: Down,
    req: &Req,
    n: usize,
    pause: Duration,
    cell: &str,
) -> Result<Exchanged, String> {
    let tls = tls_for(world, down, req.client_cert);
    let started = Instant::now();
    if down.h2() {
        return client_runtime().block_on(async move {
            let c = H2Conn::connect(addr, tls).await?;
            let mut repeats = Vec::with_capacity(n);
            for i in 0..n {
                if i > 0 && !pause.is_zero() {
                    monoio::time::sleep(pause).await;
                }
                repeats.push(c.request(req, cell).await);
            }
            Ok(repeated(repeats, c.local, started))
        });
    }
    let mut c = H1Conn::connect(addr, tls)?;
    let bytes = req.to_h1(cell);
    let mut repeats = Vec::with_capacity(n);
    for i in 0..n {
        if i > 0 {
            std::thread::sleep(pause);
        }
        let r = c.send(&bytes).and_then(|()| c.read_response(req.method));
        let failed = r.is_err();
        repeats.push(r);
        if failed {
            break;
        }
    }
    Ok(repeated(repeats, c.local, started))
}

/// What [`repeat`] got: the responses in order, on one connection from `local`.
fn repeated(repeats: Vec<Result<Resp, String>>, local: SocketAddr, started: Instant) -> Exchanged {
    Exchanged {
        resp: Ok(Resp::default()),
        follow: None,
        repeats,
        local,
        elapsed: started.elapsed(),
        closed: None,
    }
}

/// A cell's outcome.
pub(crate) enum Verdict {
    Pass,
    NotApplicable(String),
    Fail(String),
}

pub(crate) fn render(v: &V, down: Down, local: SocketAddr) -> String {
    match v {
        V::Lit(s) => s.clone(),
        V::ClientIp => local.ip().to_string(),
        V::ClientAddr => local.to_string(),
        V::Scheme => if down.tls() { "https" } else { "http" }.to_string(),
    }
}

pub(crate) fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Problems with `fields` under `check` (empty when it holds).
pub(crate) fn check_fields(
    what: &str,
    fields: &[(String, String)],
    check: &Check,
    down: Down,
    local: SocketAddr,
) -> Vec<String> {
    match check {
        Check::Is(name, want) => {
            let want: Vec<String> = want.iter().map(|v| render(v, down, local)).collect();
            let got = header_values(fields, name);
            if got == want {
                vec![]
            } else {
                vec![format!("{what} {name}: {got:?}, expected {want:?}")]
            }
        }
        Check::Absent(name) => {
            let got: Vec<&String> = fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect();
            if got.is_empty() {
                vec![]
            } else {
                vec![format!("{what} {name}: {got:?}, expected none")]
            }
        }
        Check::Without(name, value) => {
            let got = header_values(fields, name);
            if got.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                vec![format!("{what} {name}: {got:?}, expected no {value:?}")]
            } else {
                vec![]
            }
        }
        Check::Date(name, want) => {
            let got: Vec<&String> = fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect();
            let ok = match (got.as_slice(), want) {
                ([v], Some(want)) => v.as_str() == *want,
                ([v], None) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    (now.saturating_sub(10)..=now + 1)
                        .any(|t| ringside_engine::imf_fixdate(t) == v.as_str())
                }
                _ => false,
            };
            if ok {
                vec![]
            } else {
                let want = want.unwrap_or("one current IMF-fixdate");
                vec![format!("{what} {name}: {got:?}, expected {want:?}")]
            }
        }
        Check::Uuid(name) => {
            let got = header_values(fields, name);
            if got.len() == 1 && is_uuid(&got[0]) {
                vec![]
            } else {
                vec![format!("{what} {name}: {got:?}, expected one UUID")]
            }
        }
        Check::Shape(name, shape) => {
            let got = header_values(fields, name);
            let fits = |v: &str| {
                v.len() == shape.len()
                    && v.bytes().zip(shape.bytes()).all(|(g, s)| {
                        if s == b'#' {
                            g.is_ascii_hexdigit()
                        } else {
                            g == s
                        }
                    })
            };
            if got.len() == 1 && fits(&got[0]) {
                vec![]
            } else {
                vec![format!(
                    "{what} {name}: {got:?}, expected one of the shape {shape:?}"
                )]
            }
        }
        Check::SameAs(name, other) => {
            let (a, b) = (header_values(fields, name), header_values(fields, other));
            if !a.is_empty() && a == b {
                vec![]
            } else {
                vec![format!(
                    "{what} {name}: {a:?}, expected the same as {other}: {b:?}"
                )]
            }
        }
        Check::ByTls(plain, tls) => check_fields(
            what,
            fields,
            if down.tls() { tls } else { plain },
            down,
            local,
        ),
    }
}

pub(crate) fn check_response(
    resp: &Resp,
    e: &Expect,
    down: Down,
    local: SocketAddr,
) -> Vec<String> {
    let mut problems = Vec::new();
    if resp.status != e.status {
        problems.push(format!("status {}, expected {}", resp.status, e.status));
    }
    if let Some(code) = e.grpc_status {
        let in_headers = header_values(&resp.headers, "grpc-status");
        let in_trailers = header_values(&resp.trailers, "grpc-status");
        let got = in_headers.first().or(in_trailers.first());
        if got.map(String::as_str) != Some(code.to_string().as_str()) {
            problems.push(format!("grpc-status {got:?}, expected {code}"));
        }
        if !header_values(&resp.headers, "content-type")
            .first()
            .is_some_and(|c| c.starts_with("application/grpc"))
        {
            problems.push("content-type is not application/grpc".into());
        }
    }
    match &e.body {
        None => {}
        Some(BodyCheck::Empty) if !resp.body.is_empty() => problems.push(format!(
            "a body of {} bytes, expected none",
            resp.body.len()
        )),
        Some(BodyCheck::Is(b)) if &resp.body != b => problems.push(format!(
            "body {:?}, expected {:?}",
            String::from_utf8_lossy(&resp.body),
            String::from_utf8_lossy(b)
        )),
        Some(BodyCheck::ShortText)
            if resp.body.is_empty() || resp.body.len() > 512 || !resp.body.ends_with(b"\n") =>
        {
            problems.push(format!(
                "body {:?}, expected one short line of text",
                String::from_utf8_lossy(&resp.body)
            ))
        }
        Some(_) => {}
    }
    for c in &e.headers {
        problems.extend(check_fields(
            "response header",
            &resp.headers,
            c,
            down,
            local,
        ));
    }
    for c in &e.trailers {
        problems.extend(check_fields(
            "response trailer",
            &resp.trailers,
            c,
            down,
            local,
        ));
    }
    problems
}

pub(crate) fn check_origin(
    world: &World,
    e: &Expect,
    down: Down,
    up: Up,
    cell: &str,
    local: SocketAddr,
) -> Vec<String> {
    let seen = world.seen(cell);
    let describe = |s: &[(Which, Up, Seen)]| {
        s.iter()
            .map(|(w, u, s)| {
                format!(
                    "{} {} {} {}{}",
                    w.name(),
                    u.label(),
                    s.method,
                    s.target,
                    if s.complete { "" } else { " (incomplete)" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let seen = match &e.origin {
        OriginCheck::Tries(tries) if seen.len() < tries.len() => {
            crate::eventually(Duration::from_secs(2), || {
                world.seen(cell).len() >= tries.len()
            });
            world.seen(cell)
        }
        _ => seen,
    };
    match &e.origin {
        OriginCheck::Any => vec![],
        OriginCheck::Untouched if seen.is_empty() => vec![],
        OriginCheck::Untouched => vec![format!("an origin received it: {}", describe(&seen))],
        OriginCheck::NoCompleteRequest => {
            let complete: Vec<_> = seen.iter().filter(|s| s.2.complete).cloned().collect();
            if complete.is_empty() {
                vec![]
            } else {
                vec![format!(
                    "an origin received all of it: {}",
                    describe(&complete)
                )]
            }
        }
        OriginCheck::Got(g) => {
            let mine = received_by(&seen, g.pick, down, up);
            let [s] = mine.as_slice() else {
                return vec![format!(
                    "origin {} ({}) received it {} times; all origins: [{}]",
                    which_of(g.pick, down).name(),
                    up.label(),
                    mine.len(),
                    describe(&seen)
                )];
            };
            let mut problems = Vec::new();
            if seen.len() != 1 {
                problems.push(format!("received more than once: {}", describe(&seen)));
            }
            problems.extend(check_seen(g, s, down, local));
            problems
        }
        OriginCheck::Tries(tries) => {
            let mut problems = Vec::new();
            if seen.len() != tries.len() {
                problems.push(format!(
                    "received {} times, expected {} tries: [{}]",
                    seen.len(),
                    tries.len(),
                    describe(&seen)
                ));
            }
            for (i, g) in tries.iter().enumerate() {
                let mine = received_by(&seen, g.pick, down, up);
                let which = which_of(g.pick, down);
                let k = tries
                    .iter()
                    .take(i)
                    .filter(|t| which_of(t.pick, down) == which)
                    .count();
                match mine.get(k) {
                    Some(s) => problems.extend(
                        check_seen(g, s, down, local)
                            .into_iter()
                            .map(|p| format!("try {}: {p}", i + 1)),
                    ),
                    None => problems.push(format!(
                        "try {}: origin {} ({}) did not receive it",
                        i + 1,
                        which_of(g.pick, down).name(),
                        up.label()
                    )),
                }
            }
            problems
        }
    }
}

/// The origin a [`Pick`] names for this downstream.
fn which_of(pick: Pick, down: Down) -> Which {
    match pick {
        Pick::Is(w) => w,
        Pick::ByTls(plain, tls) => {
            if down.tls() {
                tls
            } else {
                plain
            }
        }
    }
}

/// What the origin `pick` names (of upstream protocol `up`) received, in order.
fn received_by(seen: &[(Which, Up, Seen)], pick: Pick, down: Down, up: Up) -> Vec<&Seen> {
    let which = which_of(pick, down);
    seen.iter()
        .filter(|(w, u, _)| *w == which && *u == up)
        .map(|(_, _, s)| s)
        .collect()
}

/// How one request an origin received differs from `g`.
fn check_seen(g: &Got, s: &Seen, down: Down, local: SocketAddr) -> Vec<String> {
    let mut problems = Vec::new();
    if !s.complete {
        problems.push("the origin got an incomplete request".into());
    }
    if let Some(m) = g.method {
        if s.method != m {
            problems.push(format!("origin got method {}, expected {m}", s.method));
        }
    }
    if let Some(t) = &g.target {
        if &s.target != t {
            problems.push(format!("origin got target {:?}, expected {t:?}", s.target));
        }
    }
    if let Some(b) = &g.body {
        if &s.body != b {
            problems.push(format!(
                "origin got body {:?}, expected {:?}",
                String::from_utf8_lossy(&s.body),
                String::from_utf8_lossy(b)
            ));
        }
    }
    for c in &g.headers {
        problems.extend(check_fields("origin header", &s.headers, c, down, local));
    }
    for c in &g.trailers {
        problems.extend(check_fields("origin trailer", &s.trailers, c, down, local));
    }
    problems
}

pub(crate) fn run_cell(world: &World, row: &Row, down: Down, up: Up, cell: &str) -> Verdict {
    if let Some((only, why)) = row.only_up {
        if up != only {
            return Verdict::NotApplicable(why.to_string());
        }
    }
    let form = match &row.send {
        Traffic::One { h1, h2 } => Some(if down.h2() { h2 } else { h1 }),
        Traffic::Repeat(..) => None,
    };
    if let Some(Form::NotApplicable(why)) = form {
        return Verdict::NotApplicable(why.to_string());
    }
    let proxy = match world.proxy(row.setup) {
        Ok(p) => p,
        Err(e) => {
            let first: String = e.lines().next().unwrap_or("").chars().take(120).collect();
            return Verdict::Fail(format!(
                "the {:?} configuration was refused ({} errors, listed after the matrix; the first: {first}...)",
                row.setup,
                e.lines().count()
            ));
        }
    };
    let addr = proxy.addr(&listener_name(down, up));
    std::thread::scope(|scope| {
        let background = match &row.before {
            None => None,
            Some(before) => match send_before(world, scope, addr, down, before, cell) {
                Ok(b) => b,
                Err(err) => return Verdict::Fail(err),
            },
        };
        let verdict = run_exchange(world, row, form, down, up, cell, addr);
        match background.map(|b| b.join()) {
            Some(Err(_)) => Verdict::Fail("the request sent before panicked".into()),
            _ => verdict,
        }
    })
}

/// Sends the row's `before` request (see [`Before`]) under the cell id `CELL-before`; for
/// one in the background, returns its thread once an origin has received it.
fn send_before<'s>(
    world: &World,
    scope: &'s std::thread::Scope<'s, '_>,
    addr: SocketAddr,
    down: Down,
    before: &Before,
    cell: &str,
) -> Result<Option<std::thread::ScopedJoinHandle<'s, ()>>, String> {
    let before_cell = format!("{cell}-before");
    let (req, background) = match before {
        Before::Sent(req) => (req.clone(), false),
        Before::InFlight(req) => (req.clone(), true),
    };
    let tls = tls_for(world, down, req.client_cert);
    let id = before_cell.clone();
    let send = move || {
        if down.h2() {
            let _ = client_runtime().block_on(async {
                let c = H2Conn::connect(addr, tls).await?;
                c.request(&req, &id).await
            });
        } else if let Ok(mut c) = H1Conn::connect(addr, tls) {
            let _ = c
                .send(&req.to_h1(&id))
                .and_then(|()| c.read_response(req.method));
        }
    };
    if !background {
        send();
        return Ok(None);
    }
    let handle = scope.spawn(send);
    let arrived = crate::eventually(WAIT, || {
        handle.is_finished() || !world.seen(&before_cell).is_empty()
    });
    if !arrived || world.seen(&before_cell).is_empty() {
        let _ = handle.join();
        return Err("the request sent before did not reach an origin".into());
    }
    Ok(Some(handle))
}

/// The row's own exchange and every check on it.
fn run_exchange(
    world: &World,
    row: &Row,
    form: Option<&Form>,
    down: Down,
    up: Up,
    cell: &str,
    addr: SocketAddr,
) -> Verdict {
    let e = &row.expect;
    let ex = match (&row.send, form) {
        (Traffic::Repeat(req, n, pause), _) => repeat(world, addr, down, req, *n, *pause, cell),
        (_, Some(form)) if !down.h2() => exchange_h1(world, addr, down, form, e, cell),
        (_, Some(Form::Req(req))) => exchange_h2(world, addr, down, req, e, cell),
        (_, Some(other)) => Err(format!("{other:?} cannot be sent over HTTP/2")),
        (_, None) => Err("nothing to send".into()),
    };
    let ex = match ex {
        Ok(ex) => ex,
        Err(err) => return Verdict::Fail(err),
    };
    let mut problems = Vec::new();
    if let Traffic::Repeat(_, n, _) = &row.send {
        let mut counts = (0usize, 0usize);
        for r in &ex.repeats {
            match r {
                Ok(r) if r.status == e.status => match header_values(&r.headers, "x-origin")
                    .first()
                    .map(String::as_str)
                {
                    Some("a") => counts.0 += 1,
                    Some("b") => counts.1 += 1,
                    other => problems.push(format!("a response from origin {other:?}")),
                },
                Ok(r) => problems.push(format!("status {}, expected {}", r.status, e.status)),
                Err(err) => problems.push(err.clone()),
            }
        }
        if ex.repeats.len() != *n {
            problems.push(format!("{} of {n} requests answered", ex.repeats.len()));
        }
        if let Some(ranges) = e.split {
            for ((name, c), (min, max)) in
                [("a", counts.0), ("b", counts.1)].into_iter().zip(ranges)
            {
                if c < min || c > max {
                    problems.push(format!(
                        "origin {name} answered {c} of {n} (a {}, b {}), expected {min} to {max}",
                        counts.0, counts.1
                    ));
                }
            }
        }
        problems.dedup();
    } else {
        match &ex.resp {
            Err(err) => problems.push(err.clone()),
            Ok(resp) => {
                let p = check_response(resp, e, down, ex.local);
                if !p.is_empty() {
                    problems.extend(p);
                    problems.push(format!("response: {}", resp.describe()));
                }
            }
        }
        if let Some(min) = e.min_elapsed {
            if ex.elapsed < min {
                problems.push(format!(
                    "answered after {:?}, expected at least {min:?}",
                    ex.elapsed
                ));
            }
        }
        if e.reusable {
            let (_, status, body) = follow_up();
            match &ex.follow {
                Some(Ok(r)) if r.status == status && r.body == body.as_bytes() => {}
                Some(Ok(r)) => problems.push(format!(
                    "the next request on the connection got: {}",
                    r.describe()
                )),
                Some(Err(err)) => {
                    problems.push(format!("the next request on the connection failed: {err}"))
                }
                None => {}
            }
        }
        if ex.closed == Some(false) {
            problems.push("the connection was not closed".into());
        }
    }
    problems.extend(check_origin(world, e, down, up, cell, ex.local));
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------
// The whole table

/// Runs every row in every column of `world`; prints the matrix and returns every failure
/// as `row × downstream × upstream × driver: what went wrong`.
pub fn run(world: &World, rows: &[Row]) -> Vec<String> {
    let started = Instant::now();
    let driver = world.driver.toml();
    let columns: Vec<(Down, Up)> = Down::ALL
        .iter()
        .flat_map(|d| Up::ALL.iter().map(move |u| (*d, *u)))
        .collect();
    let mut failures = Vec::new();
    let mut not_applicable = Vec::new();
    let mut matrix = String::new();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10);
    let _ = write!(
        matrix,
        "\n{:width$} ",
        format!("behaviour table on {driver}")
    );
    for (d, u) in &columns {
        let _ = write!(matrix, " {:>16}", format!("{}>{}", d.label(), u.suffix()));
    }
    matrix.push('\n');
    let (mut pass, mut na) = (0, 0);
    for (ri, row) in rows.iter().enumerate() {
        let _ = write!(matrix, "{:width$} ", row.name);
        for (ci, (down, up)) in columns.iter().enumerate() {
            let cell = format!("{driver}-{ri}-{ci}");
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_cell(world, row, *down, *up, &cell)
            }))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Verdict::Fail(format!("panicked: {msg}"))
            });
            let mark = match verdict {
                Verdict::Pass => {
                    pass += 1;
                    "ok"
                }
                Verdict::NotApplicable(why) => {
                    na += 1;
                    if !not_applicable
                        .iter()
                        .any(|(r, w): &(&str, String)| *r == row.name && *w == why)
                    {
                        not_applicable.push((row.name, why));
                    }
                    "n/a"
                }
                Verdict::Fail(why) => {
                    failures.push(format!(
                        "{} × {} × {} × {driver}: {why}",
                        row.name,
                        down.label(),
                        up.label()
                    ));
                    "FAIL"
                }
            };
            let _ = write!(matrix, " {mark:>16}");
        }
        matrix.push('\n');
    }
    let _ = writeln!(
        matrix,
        "\n{driver}: {} cells: {pass} pass, {} fail, {na} not applicable, in {:.1?}",
        rows.len() * columns.len(),
        failures.len(),
        started.elapsed()
    );
    let _ = writeln!(matrix, "not applicable:");
    for (row, why) in &not_applicable {
        let _ = writeln!(matrix, "  {row}: {why}");
    }
    for (setup, p) in &world.proxies {
        if let Err(e) = p {
            let _ = writeln!(matrix, "the {setup:?} configuration was refused:\n{e}");
        }
    }
    eprintln!("{matrix}");
    failures
}
