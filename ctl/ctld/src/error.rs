//! The errors a request to ctld can end with. Each becomes one `error` reply
//! ([`CtldError::into_reply`]); nothing downstream inspects their text.

use ringside_wire::Reply;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtldError {
    /// A configuration that does not validate; `errors` are `path: message` lines.
    #[error("{}configuration refused ({})", node_prefix(.node), plural(.errors.len(), "error"))]
    Invalid {
        /// Set when the request targeted several nodes.
        node: Option<String>,
        errors: Vec<String>,
    },
    #[error("{0}")]
    BadNodeId(String),
    #[error("no node is known yet: name one with --node")]
    NoNodeKnown,
    #[error("no node is known yet")]
    NoNodeYet,
    #[error("{count} nodes are known ({names}): name one with --node")]
    Ambiguous { count: usize, names: String },
    #[error("no known node matches the selector {0}")]
    NoMatch(String),
    /// A rollout refused: already one under way, a bad spec, nothing to pause.
    #[error("{0}")]
    Rollout(String),
    #[error("node {node} is in rollout {id}: pause or abort it, or wait for it to end")]
    InRollout { node: String, id: u64 },
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("node {0} has no configuration yet")]
    NoConfiguration(String),
    #[error("node {node} has no generation before {current}")]
    NoEarlier { node: String, current: u64 },
    #[error("node {node} has no generation {generation} ({range})")]
    NoGeneration {
        node: String,
        generation: u64,
        range: String,
    },
    #[error("node {node} has no override {key:?}")]
    NoOverride { node: String, key: String },
    /// An `endpoints` or `weights` edit that does not fit the node's configuration.
    #[error("{}{message}", node_prefix(.node))]
    Edit {
        node: Option<String>,
        message: String,
    },
    /// Reading the state directory failed.
    #[error("node {node}: generation {generation}: {message}")]
    Read {
        node: String,
        generation: u64,
        message: String,
    },
    /// Too many writes are waiting for the state directory; the change was not made.
    #[error("the state directory is behind ({0} writes pending); try again")]
    Busy(usize),
    /// The daemon is shutting down (its reconciler is gone).
    #[error("ringside-ctld is shutting down")]
    ShuttingDown,
}

impl CtldError {
    /// The error with the node named, when a request targets several nodes.
    pub fn for_node(self, node: &str, multi: bool) -> CtldError {
        if !multi {
            return self;
        }
        match self {
            CtldError::Invalid { errors, .. } => CtldError::Invalid {
                node: Some(node.to_owned()),
                errors,
            },
            CtldError::Edit { message, .. } => CtldError::Edit {
                node: Some(node.to_owned()),
                message,
            },
            other => other,
        }
    }

    pub fn into_reply(self) -> Reply {
        let message = self.to_string();
        match self {
            CtldError::Invalid { errors, .. } => Reply::Error { message, errors },
            _ => Reply::error(message),
        }
    }
}

/// Validates a configuration once; the errors as `path: message` lines.
pub fn validate(text: &str) -> Result<(), CtldError> {
    ringside_config::parse(text)
        .map(|_| ())
        .map_err(|errs| CtldError::Invalid {
            node: None,
            errors: errs.0.iter().map(ToString::to_string).collect(),
        })
}

fn node_prefix(node: &Option<String>) -> String {
    node.as_ref()
        .map_or_else(String::new, |n| format!("node {n}: "))
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let e = CtldError::Invalid {
            node: None,
            errors: vec!["a: b".into(), "c: d".into()],
        };
        assert_eq!(e.to_string(), "configuration refused (2 errors)");
        let e = e.for_node("web-1", true);
        assert_eq!(
            e.to_string(),
            "node web-1: configuration refused (2 errors)"
        );
        let e = CtldError::Edit {
            node: None,
            message: "no cluster named \"x\"".into(),
        };
        assert_eq!(
            e.for_node("a", true).to_string(),
            "node a: no cluster named \"x\""
        );
    }
}
