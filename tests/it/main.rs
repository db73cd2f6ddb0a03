//! The one integration-test binary (one link keeps test builds fast).

mod gradcheck;
mod ui;
