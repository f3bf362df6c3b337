//! Validation (being written).
use crate::{Config, ConfigErrors};

pub(crate) fn parse_and_validate(_text: &str) -> Result<Config, ConfigErrors> {
    unimplemented!()
}
