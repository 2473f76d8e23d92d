//! `EndUser`: who, in the app's own terms, a connection belongs to.

use serde::Serialize;

/// The app's user behind a connection: its id in the app (1 to 200
/// characters), and optionally an email (at most 254, one `@` with text on
/// both sides, no spaces) and a display name (1 to 200). None of them may
/// hold control characters, so each is safe in a log line and a page.
/// Lengths count characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EndUser {
    /// The app's id for the user.
    id: String,
    /// As the app gave it; matched without regard to case.
    email: Option<String>,
    display_name: Option<String>,
}

/// Which member of an end user is refused; its reason is a fixed sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", self.field(), self.reason())]
pub enum EndUserError {
    Id,
    Email,
    DisplayName,
}

impl EndUserError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::Id => "end_user.id",
            Self::Email => "end_user.email",
            Self::DisplayName => "end_user.display_name",
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Id => "is 1 to 200 characters, no control characters",
            Self::Email => {
                "is at most 254 characters with one '@' between a name and a domain, no spaces"
            }
            Self::DisplayName => "is 1 to 200 characters, no control characters",
        }
    }
}

const MAX_ID_CHARS: usize = 200;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_DISPLAY_NAME_CHARS: usize = 200;

impl EndUser {
    pub fn parse(
        id: &str,
        email: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<Self, EndUserError> {
        let display_name = display_name
            .map(|name| {
                plain_text(name, MAX_DISPLAY_NAME_CHARS)
                    .then(|| name.to_owned())
                    .ok_or(EndUserError::DisplayName)
            })
            .transpose()?;
        Ok(Self {
            id: Self::parse_id(id)?,
            email: email.map(Self::parse_email).transpose()?,
            display_name,
        })
    }

    /// An end user's id, as a filter takes it too.
    pub fn parse_id(raw: &str) -> Result<String, EndUserError> {
        plain_text(raw, MAX_ID_CHARS)
            .then(|| raw.to_owned())
            .ok_or(EndUserError::Id)
    }

    /// An email as given. Only its shape is checked: whether it reaches
    /// anyone is the app's business.
    pub fn parse_email(raw: &str) -> Result<String, EndUserError> {
        let shaped = raw.chars().count() <= MAX_EMAIL_CHARS
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(raw.split_once('@'), Some((name, domain))
                if !name.is_empty() && !domain.is_empty() && !domain.contains('@'));
        shaped.then(|| raw.to_owned()).ok_or(EndUserError::Email)
    }

    /// The form emails are matched in: addresses differ in case only by
    /// accident of typing, so `A@x.org` and `a@X.org` find the same user.
    pub fn email_key(email: &str) -> String {
        email.to_lowercase()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }
}

fn plain_text(raw: &str, max_chars: usize) -> bool {
    (1..=max_chars).contains(&raw.chars().count()) && !raw.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_member_is_refused_by_name() {
        let long = |n| "x".repeat(n);
        let cases: [(&str, Option<&str>, Option<&str>, EndUserError); 9] = [
            ("", None, None, EndUserError::Id),
            (&long(201), None, None, EndUserError::Id),
            ("a\nb", None, None, EndUserError::Id),
            ("u", Some("no-at"), None, EndUserError::Email),
            ("u", Some("a@b@c"), None, EndUserError::Email),
            ("u", Some("@b"), None, EndUserError::Email),
            ("u", Some("a b@c"), None, EndUserError::Email),
            ("u", None, Some(""), EndUserError::DisplayName),
            ("u", None, Some(&long(201)), EndUserError::DisplayName),
        ];
        for (id, email, name, expected) in cases {
            assert_eq!(
                EndUser::parse(id, email, name),
                Err(expected),
                "{id:?} {email:?} {name:?}"
            );
        }
    }

    #[test]
    fn the_bounds_themselves_are_taken() {
        let email = format!("{}@example.org", "a".repeat(MAX_EMAIL_CHARS - 12));
        let user = EndUser::parse(&"é".repeat(200), Some(&email), Some(&"n".repeat(200)));
        assert!(user.is_ok());
        let too_long = format!("a{email}");
        assert_eq!(
            EndUser::parse("u", Some(&too_long), None),
            Err(EndUserError::Email)
        );
    }
}
