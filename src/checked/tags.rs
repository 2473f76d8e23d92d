//! `Tags`: the app's own labels on a connection, to find it by.

use std::collections::BTreeMap;

use serde::Serialize;

/// At most 32 tags; a key is 1 to 64 of `A-Z a-z 0-9 _ . -` (no `:`, which
/// separates key from value in the `tag=key:value` filter); a value is at
/// most 256 characters without control characters (empty is a value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Tags(BTreeMap<String, String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub enum TagsError {
    TooMany,
    Key,
    Value,
    /// A filter that is not `key:value`.
    Filter,
}

impl TagsError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooMany => "a connection has at most 32 tags",
            Self::Key => "a tag key is 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' or '-'",
            Self::Value => {
                "a tag value is a string of at most 256 characters, no control characters"
            }
            Self::Filter => "a tag filter is key:value",
        }
    }
}

const MAX_TAGS: usize = 32;
const MAX_KEY_CHARS: usize = 64;
const MAX_VALUE_CHARS: usize = 256;

impl Tags {
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Self, TagsError> {
        if raw.len() > MAX_TAGS {
            return Err(TagsError::TooMany);
        }
        for (key, value) in &raw {
            check_pair(key, value)?;
        }
        Ok(Self(raw))
    }

    /// RFC 7396 on a map of strings: each key given is set, a null removes
    /// it, the others stay. The bounds hold for the result as a whole.
    pub fn merged(&self, patch: &BTreeMap<String, Option<String>>) -> Result<Self, TagsError> {
        let mut tags = self.0.clone();
        for (key, value) in patch {
            check_key(key)?;
            match value {
                Some(value) => {
                    check_pair(key, value)?;
                    tags.insert(key.clone(), value.clone());
                }
                None => {
                    tags.remove(key);
                }
            }
        }
        Self::parse(tags)
    }

    /// One `tag=key:value` filter: the key ends at the first `:`.
    pub fn parse_filter(raw: &str) -> Result<(String, String), TagsError> {
        let (key, value) = raw.split_once(':').ok_or(TagsError::Filter)?;
        check_pair(key, value)?;
        Ok((key.to_owned(), value.to_owned()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As stored beside a session or an event: a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a map of strings serialises")
    }

    /// Read back from `to_json`; `None` when it is not what we wrote.
    pub fn from_json(raw: &str) -> Option<Self> {
        Self::parse(serde_json::from_str(raw).ok()?).ok()
    }
}

fn check_key(key: &str) -> Result<(), TagsError> {
    let valid = (1..=MAX_KEY_CHARS).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid.then_some(()).ok_or(TagsError::Key)
}

fn check_pair(key: &str, value: &str) -> Result<(), TagsError> {
    check_key(key)?;
    let valid = value.chars().count() <= MAX_VALUE_CHARS && !value.chars().any(char::is_control);
    valid.then_some(()).ok_or(TagsError::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bounds_are_refused_by_reason() {
        let many: BTreeMap<_, _> = (0..33).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(Tags::parse(many), Err(TagsError::TooMany));
        let long_key = "k".repeat(65);
        let long_value = "v".repeat(257);
        for (pair, expected) in [
            (("", "v"), TagsError::Key),
            (("a:b", "v"), TagsError::Key),
            (("a b", "v"), TagsError::Key),
            ((long_key.as_str(), "v"), TagsError::Key),
            (("k", long_value.as_str()), TagsError::Value),
            (("k", "a\u{7}"), TagsError::Value),
        ] {
            assert_eq!(Tags::parse(map([pair])), Err(expected), "{pair:?}");
        }
        assert!(Tags::parse(map([("plan.tier-1_x", "")])).is_ok());
    }

    #[test]
    fn a_merge_sets_removes_and_keeps() {
        let tags = Tags::parse(map([("a", "1"), ("b", "2")])).unwrap();
        let patch = [
            ("a".to_owned(), None),
            ("c".to_owned(), Some("3".to_owned())),
        ]
        .into();
        assert_eq!(
            tags.merged(&patch).unwrap(),
            Tags::parse(map([("b", "2"), ("c", "3")])).unwrap()
        );
    }

    #[test]
    fn a_merge_past_the_limit_is_refused() {
        let full: BTreeMap<_, _> = (0..32).map(|i| (format!("k{i}"), String::new())).collect();
        let tags = Tags::parse(full).unwrap();
        let one_more = [("extra".to_owned(), Some(String::new()))].into();
        assert_eq!(tags.merged(&one_more), Err(TagsError::TooMany));
        let swap = [
            ("k0".to_owned(), None),
            ("extra".to_owned(), Some(String::new())),
        ]
        .into();
        assert!(tags.merged(&swap).is_ok());
    }

    #[test]
    fn a_filter_splits_at_the_first_colon() {
        assert_eq!(
            Tags::parse_filter("plan:a:b"),
            Ok(("plan".into(), "a:b".into()))
        );
        assert_eq!(Tags::parse_filter("plan"), Err(TagsError::Filter));
        assert_eq!(Tags::parse_filter(":x"), Err(TagsError::Key));
    }
}
