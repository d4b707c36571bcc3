//! The Azure Functions custom handler: an axum server speaking the host's HTTP protocol, one route
//! per function in `handlers/`.

pub mod event;
pub mod protocol;
