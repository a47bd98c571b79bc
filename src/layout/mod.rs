//! Output layouts of `smq record` (SENSORS.md §5).

pub mod readings;
pub mod rotate;
pub mod wide;
