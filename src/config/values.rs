//! One setting's value, typed: the parsers clap runs on each flag or
//! variable, so a malformed value is refused by clap, naming the flag and
//! its variable. Rules that span settings are `check.rs`'s.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::{value_parser, Arg, ValueEnum};
use secrecy::SecretString;
use url::Url;

use crate::checked::{AllowedHost, Origin};
use crate::crypto::KeyRing;
use crate::store::DatabaseUrl;

/// Upper bounds that keep durations and sizes far from overflow.
pub const MAX_SECS: u64 = 24 * 60 * 60;
pub const MAX_MILLIS: u64 = 60 * 60 * 1000;
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 366 * 24 * 60 * 60;
pub const MAX_IDLE_DAYS: u64 = 3660;
pub const MAX_POOL: u32 = 1000;
pub const MAX_FAILING_AFTER: u32 = 1000;
pub const MAX_BURST: u32 = 1_000_000;
pub const MAX_RATE_PER_SEC: f64 = 1_000_000.0;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    ClientSecretPost,
    ClientSecretBasic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn is_blank(value: &OsStr) -> bool {
    value.to_str().is_some_and(|v| v.trim().is_empty())
}

/// For a setting without a default: a blank value counts as unset, so that
/// `NAME=` in `.env` leaves it off. Its field is spelled
/// `std::option::Option<T>`: clap then hands every value, blank ones too, to
/// this parser (a plain `Option<T>` would make clap parse a blank as `T`).
pub fn blank_is_unset<P: TypedValueParser>(parser: P) -> BlankIsUnset<P> {
    BlankIsUnset(parser)
}

#[derive(Clone)]
pub struct BlankIsUnset<P>(P);

impl<P: TypedValueParser> TypedValueParser for BlankIsUnset<P> {
    type Value = Option<P::Value>;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        if is_blank(value) {
            return Ok(None);
        }
        self.0.parse_ref(cmd, arg, value).map(Some)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// For a setting with a default: a blank value counts as unset, so the
/// default applies.
pub fn blank_is_default<P: TypedValueParser>(parser: P) -> BlankIsDefault<P> {
    BlankIsDefault(parser)
}

#[derive(Clone)]
pub struct BlankIsDefault<P>(P);

impl<P: TypedValueParser> TypedValueParser for BlankIsDefault<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let default = arg.and_then(|arg| arg.get_default_values().first());
        let value = match default {
            Some(default) if is_blank(value) => default.as_os_str(),
            _ => value,
        };
        self.0.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// For a value that may hold a secret (a key, a database password): a
/// refusal names the setting and what is wrong, never the value, which
/// clap's own message would repeat.
pub fn unechoed<T, F>(parse: F) -> Unechoed<F>
where
    F: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
{
    Unechoed(parse)
}

#[derive(Clone)]
pub struct Unechoed<F>(F);

impl<T, F> TypedValueParser for Unechoed<F>
where
    F: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let problem = match value.to_str() {
            Some(value) => match (self.0)(value) {
                Ok(parsed) => return Ok(parsed),
                Err(problem) => problem,
            },
            None => "not valid UTF-8".to_owned(),
        };
        let arg = arg.map_or_else(|| "...".to_owned(), ToString::to_string);
        let message = format!("invalid value for '{arg}': {problem}\n");
        Err(clap::Error::raw(ErrorKind::ValueValidation, message).with_cmd(cmd))
    }
}

/// Booleans take `true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`, as the contract says.
pub fn boolean(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("not a boolean: use true, false, 1, 0, yes, no, on or off".to_owned()),
    }
}

/// A whole number from 1 to `max`.
pub fn count(max: u32) -> impl TypedValueParser<Value = u32> {
    value_parser!(u32).range(1..=i64::from(max))
}

/// A rate above zero and at most `max`, decimals allowed (a tenth of a
/// rate, for one of ten instances, need not be whole).
pub fn per_second(max: f64) -> impl TypedValueParser<Value = f64> {
    unechoed(move |raw: &str| match raw.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= max => Ok(rate),
        _ => Err(format!(
            "not a rate: use a number above 0 and at most {max}"
        )),
    })
}

/// A whole number of seconds from 1 to `max`.
pub fn seconds(max: u64) -> impl TypedValueParser<Value = Duration> {
    value_parser!(u64).range(1..=max).map(Duration::from_secs)
}

/// A whole number of milliseconds from 1 to `max`.
pub fn millis(max: u64) -> impl TypedValueParser<Value = Duration> {
    value_parser!(u64).range(1..=max).map(Duration::from_millis)
}

/// A whole number of days from 1 to `max`.
pub fn days(max: u64) -> impl TypedValueParser<Value = Duration> {
    value_parser!(u64)
        .range(1..=max)
        .map(|days| Duration::from_secs(days * 24 * 60 * 60))
}

pub fn socket_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.parse()
        .map_err(|_| "not a socket address like 127.0.0.1:3000".to_owned())
}

pub fn text(raw: &str) -> Result<String, String> {
    Ok(raw.to_owned())
}

pub fn secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw))
}

pub fn key_ring(raw: &str) -> Result<KeyRing, String> {
    KeyRing::parse(raw).map_err(|e| e.to_string())
}

pub fn database_url(raw: &str) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(raw).map_err(|e| e.to_string())
}

/// Space-separated, as the `scope` parameter writes them (RFC 6749 §3.3).
pub fn scopes(raw: &str) -> Result<Vec<String>, String> {
    Ok(raw.split_whitespace().map(str::to_owned).collect())
}

/// Comma-separated origins; blanks between commas are skipped.
pub fn origins(raw: &str) -> Result<Vec<Origin>, String> {
    comma_separated(raw, |entry| Origin::parse(entry).map_err(|e| e.to_string()))
}

/// Comma-separated `host` or `host:port`; blanks between commas are skipped.
pub fn hosts(raw: &str) -> Result<Vec<AllowedHost>, String> {
    comma_separated(raw, |entry| {
        AllowedHost::parse(entry).map_err(|e| e.to_string())
    })
}

fn comma_separated<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| parse(entry).map_err(|problem| format!("{entry:?}: {problem}")))
        .collect()
}

/// An http(s) URL with a host, without credentials or a fragment.
pub fn http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http or https URL with a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not contain credentials or a fragment".to_owned());
    }
    Ok(url)
}

/// An endpoint that receives secrets: https, or plain http only on a loopback
/// host (RFC 6749 §3.1, §3.2, RFC 7009 §2 and RFC 9700 §2.1 require TLS;
/// loopback never leaves the machine).
pub fn endpoint_url(raw: &str) -> Result<Url, String> {
    let url = http_url(raw)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err("must be https (plain http is allowed only for localhost)".to_owned());
    }
    Ok(url)
}

/// The redirect URI is checked as an endpoint but kept as written: the
/// provider compares it character for character.
pub fn redirect_uri(raw: &str) -> Result<String, String> {
    endpoint_url(raw).map(|_| raw.to_owned())
}
