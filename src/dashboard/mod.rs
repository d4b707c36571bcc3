//! The migration dashboard: every database's phase, chain, progress, forecast and findings on one
//! page, served by `lrs-autopilot dashboard` on an operator's machine and by the `Dashboard`
//! function, from the same code.
//!
//! - [`forecast`]: pure arithmetic on LRS progress (throughput, catch-up, the tail-log date);
//! - [`view`]: the page's data model, built from state documents (also the JSON endpoint);
//! - [`page`]: server-rendered HTML (maud: every value escaped unless marked otherwise);
//! - [`server`]: the routes, the Content-Security-Policy and the cutover POST's CSRF check.

pub mod forecast;
pub mod function;
pub mod page;
pub mod server;
pub mod view;

pub use page::Links;
pub use server::{Dashboard, process_token, router};
