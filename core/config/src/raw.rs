//! Raw file types (being written).
