//! Values parsed from untrusted input (connection ids, origins, `return_to`,
//! `Host` headers, API keys, connect-session tokens, event ids, end users, tags), and the connection's kind and status
//! and the event types as read back from the store: holding one is the proof it was checked.

mod allowed_host;
mod api_key;
mod connection_id;
mod connection_kind;
mod connection_status;
mod end_user;
mod event_id;
mod event_type;
mod origin;
mod own_hosts;
mod return_to;
mod session_hash;
mod tags;

pub use allowed_host::{AllowedHost, HostError};
pub use api_key::{ApiKey, ApiKeyError};
pub use connection_id::{ConnectionId, IdError};
pub use connection_kind::ConnectionKind;
pub use connection_status::ConnectionStatus;
pub use end_user::{EndUser, EndUserError};
pub use event_id::EventId;
pub use event_type::EventType;
pub use origin::{Origin, UrlError};
pub use own_hosts::OwnHosts;
pub use return_to::ReturnTo;
pub use session_hash::SessionHash;
pub use tags::{Tags, TagsError};
