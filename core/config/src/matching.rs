//! Route matching (stub being written).
use crate::model::{RequestView, RouteMatch};

pub(crate) fn matches<'a, H>(_m: &RouteMatch, _req: &RequestView<'a, H>) -> bool
where
    H: Fn(&str) -> Option<&'a [u8]>,
{
    unimplemented!()
}
