//! lrs-autopilot: hands-off SQL Server → Azure SQL Managed Instance migrations with Log Replay Service.
//!
//! The crate is laid out as a functional core with thin shells around it (see `docs/design.md` in the
//! shared docs and the README):
//!
//! - core, pure and free of I/O: [`backup`] (read backup headers), [`chain`] (plan the restore chain the
//!   way LRS will), [`migration`] (one database's state machine);
//! - adapters: [`storage`] (blobs and state documents), [`lrs`] (the ARM client), [`sim`] (an
//!   ARM-compatible LRS simulator);
//! - use cases: [`pipeline`] (blob created, timer tick, operator command), shared by every shell;
//! - shells: [`functions`] (the Azure Functions custom handler) and [`cli`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backup;
pub mod chain;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod functions;
pub mod http;
pub mod logline;
pub mod lrs;
pub mod migration;
pub mod pipeline;
pub mod preflight;
pub mod sim;
pub mod storage;
