//! Connection ids (`ConnectionId::parse`): what is accepted is one path
//! segment.

use emailoctopus_connect::checked::ConnectionId;
use proptest::prelude::*;

use super::config;

proptest! {
    #![proptest_config(config())]

    /// A connection id accepted is one path segment, the same in a URL, a
    /// log line and a key.
    #[test]
    fn an_accepted_connection_id_is_path_safe(raw in prop_oneof![
        "[A-Za-z0-9._%/\\\\ -]{0,8}",
        "[A-Za-z0-9_-][A-Za-z0-9._-]{0,110}",
        any::<String>(),
    ]) {
        let Ok(id) = ConnectionId::parse(&raw) else { return Ok(()) };
        let id = id.as_str();
        prop_assert!((1..=100).contains(&id.len()));
        prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        prop_assert!(!id.starts_with('.'));
        let base = url::Url::parse("https://h/connections/").unwrap();
        let joined = base.join(id).unwrap();
        prop_assert_eq!(joined.path(), format!("/connections/{id}"));
        let json = serde_json::to_string(&ConnectionId::parse(id).unwrap()).unwrap();
        let back: ConnectionId = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.as_str(), id);
    }
}
