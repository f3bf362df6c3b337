//! `HeaderEdits`: the listener's and the route's `request_headers_to_add/_remove` and
//! `response_headers_to_add/_remove`.
//!
//! Sits among a route's stages (edits never change which route matches, as in Envoy, where
//! they are applied by the router). One stage carries both levels in order: the listener's
//! edits first, then the route's; within a level removals come before additions. `append`
//! adds a field and keeps those present, `add_if_absent` adds only when none is present,
//! `overwrite` replaces every field of that name; a value that renders empty is not added.
//! Request edits are resolved once per request into `Req::edits` and applied by whichever
//! upstream client writes the head; response edits are resolved when the response head is
//! known, for proxied answers and direct responses alike. Values may use `%REQ(name)%`,
//! `%DOWNSTREAM_REMOTE_ADDRESS%` and `%REQUEST_ID%` (see `ringside_config::headers`).
//! No metrics; no errors (configuration refuses what could not be applied).

use bytes::Bytes;
use ringside_codec::Edits;
use ringside_config::{HeaderAction, HeaderAdd, HeaderEdits, TemplateInput};

use super::{Flow, Req};

/// One edit, in the order it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Remove(Bytes),
    /// The field's name (kept as `Bytes`: adding it copies nothing), and what to add.
    Add(Bytes, HeaderAdd),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Headers {
    request: Vec<Op>,
    response: Vec<Op>,
}

impl Headers {
    /// The edits of a route on a listener; `None` when neither configures any.
    pub(crate) fn compile(listener: &HeaderEdits, route: &HeaderEdits) -> Option<Headers> {
        if listener.is_empty() && route.is_empty() {
            return None;
        }
        let ops = |remove: fn(&HeaderEdits) -> &Vec<String>,
                   add: fn(&HeaderEdits) -> &Vec<HeaderAdd>| {
            let mut ops = Vec::new();
            for level in [listener, route] {
                ops.extend(
                    remove(level)
                        .iter()
                        .map(|n| Op::Remove(Bytes::copy_from_slice(n.as_bytes()))),
                );
                ops.extend(
                    add(level)
                        .iter()
                        .map(|a| Op::Add(Bytes::copy_from_slice(a.name.as_bytes()), a.clone())),
                );
            }
            ops
        };
        Some(Headers {
            request: ops(|e| &e.request_remove, |e| &e.request_add),
            response: ops(|e| &e.response_remove, |e| &e.response_add),
        })
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        if self.request.is_empty() {
            return Flow::Next;
        }
        let head = req.head;
        let request_id = req.request_id().to_vec();
        let input = TemplateInput {
            header: |n: &str| head.header(n),
            remote: req.conn.peer,
            request_id: &request_id,
        };
        let present = |n: &str| head.header(n).is_some() || super::PROXY_SET.contains(&n);
        resolve(&self.request, &mut req.edits, &input, present);
        Flow::Next
    }

    /// Adds this stage's response edits to `edits`; `present` tells whether the response
    /// carries a field of that (lower-case) name.
    pub(crate) fn response(
        &self,
        req: &Req<'_>,
        present: &dyn Fn(&str) -> bool,
        edits: &mut Edits,
    ) {
        if self.response.is_empty() {
            return;
        }
        let head = req.head;
        let request_id = req.request_id_if_known().unwrap_or_default();
        let input = TemplateInput {
            header: |n: &str| head.header(n),
            remote: req.conn.peer,
            request_id,
        };
        resolve(&self.response, edits, &input, present);
    }
}

/// Applies `ops` in order to `edits`, against a message whose own fields `present` tells.
fn resolve<'a, H: Fn(&str) -> Option<&'a [u8]>>(
    ops: &[Op],
    edits: &mut Edits,
    input: &TemplateInput<'a, H>,
    present: impl Fn(&str) -> bool,
) {
    for op in ops {
        match op {
            Op::Remove(name) => {
                edits.add.retain(|(n, _)| n != name);
                edits.remove_field(name.clone());
            }
            Op::Add(field, add) => {
                let mut value = Vec::new();
                add.value.render(&mut value, input);
                if value.is_empty() {
                    continue;
                }
                let name: &str = &add.name;
                match add.action {
                    HeaderAction::Append => {}
                    HeaderAction::AddIfAbsent => {
                        let kept = present(name) && !edits.removes(name.as_bytes());
                        if kept || edits.add.iter().any(|(n, _)| n == field) {
                            continue;
                        }
                    }
                    HeaderAction::Overwrite => {
                        edits.add.retain(|(n, _)| n != field);
                        edits.remove_field(field.clone());
                    }
                }
                edits.add.push((field.clone(), value.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringside_config::{ValuePart, ValueTemplate};

    fn add(name: &str, value: &str, action: HeaderAction) -> HeaderAdd {
        HeaderAdd {
            name: name.into(),
            value: ValueTemplate {
                parts: vec![ValuePart::Literal(value.as_bytes().to_vec())],
            },
            action,
        }
    }

    fn op(add: HeaderAdd) -> Op {
        Op::Add(Bytes::copy_from_slice(add.name.as_bytes()), add)
    }

    fn run(ops: &[Op], present: &[&str]) -> Edits {
        let mut edits = Edits::default();
        let input = TemplateInput {
            header: |_: &str| None,
            remote: "127.0.0.1:1".parse().unwrap(),
            request_id: b"",
        };
        resolve(ops, &mut edits, &input, |n| present.contains(&n));
        edits
    }

    #[test]
    fn actions_follow_envoy() {
        let ops = [
            op(add("x-a", "1", HeaderAction::Append)),
            op(add("x-p", "2", HeaderAction::AddIfAbsent)),
            op(add("x-n", "3", HeaderAction::AddIfAbsent)),
            op(add("x-n", "4", HeaderAction::AddIfAbsent)),
            op(add("x-o", "5", HeaderAction::Overwrite)),
            op(add("x-e", "", HeaderAction::Overwrite)),
        ];
        let e = run(&ops, &["x-p", "x-o", "x-e"]);
        assert_eq!(e.remove, vec![Bytes::from_static(b"x-o")]);
        let added: Vec<(&[u8], &[u8])> = e.add.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(
            added,
            vec![
                (&b"x-a"[..], &b"1"[..]),
                (&b"x-n"[..], &b"3"[..]),
                (&b"x-o"[..], &b"5"[..])
            ]
        );
    }

    #[test]
    fn a_later_level_removes_what_an_earlier_one_added() {
        let listener = HeaderEdits::new(
            vec![
                add("x-l", "l", HeaderAction::Append),
                add("x-k", "k", HeaderAction::Append),
            ],
            vec![],
            vec![],
            vec![],
        );
        let route = HeaderEdits::new(
            vec![add("x-k", "r", HeaderAction::AddIfAbsent)],
            vec!["x-l".into()],
            vec![],
            vec![],
        );
        let h = Headers::compile(&listener, &route).unwrap();
        let e = run(&h.request, &[]);
        let added: Vec<&[u8]> = e.add.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(added, vec![&b"x-k"[..]]);
        assert_eq!(e.add[0].1, &b"k"[..]);
        assert!(e.removes(b"x-l"));
        assert!(Headers::compile(&HeaderEdits::default(), &HeaderEdits::default()).is_none());
    }
}
