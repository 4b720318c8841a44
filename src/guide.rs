//! Guides that are pages rather than API: how brooklet maps to the libraries its users come
//! from. Nothing here is code to call; every example in these pages runs as a test.

#[doc = include_str!("../docs/coming-from.md")]
pub mod coming_from {}
