//! Values parsed from untrusted input (connection ids, origins, `return_to`,
//! `Host` headers, API keys, connect-session tokens), and the connection's kind and status as read
//! back from the store: holding one is the proof it was checked.

mod allowed_host;
mod api_key;
mod connection_id;
mod connection_kind;
mod connection_status;
mod origin;
mod own_hosts;
mod return_to;
mod session_hash;

pub use allowed_host::{AllowedHost, HostError};
pub use api_key::{ApiKey, ApiKeyError};
pub use connection_id::{ConnectionId, IdError};
pub use connection_kind::ConnectionKind;
pub use connection_status::ConnectionStatus;
pub use origin::{Origin, UrlError};
pub use own_hosts::OwnHosts;
pub use return_to::ReturnTo;
pub use session_hash::SessionHash;
