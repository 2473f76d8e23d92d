//! `RunMode`: what a run connects through, chosen once by the settings and
//! carried to the routes.

use super::{ProviderSettings, SandboxSettings};

/// What a run connects through. The settings choose it (`RunMode` with its
/// defaults holds what they say); start-up replaces each variant's settings
/// with what it built from them (`map`), so the routes hold this same enum
/// with the provider's client in it. Only start-up and `sandbox/` ask which
/// one runs; everything else asks for `provider()`.
#[derive(Debug, Clone)]
pub enum RunMode<OAuth = Box<ProviderSettings>, Sandbox = SandboxSettings> {
    /// OAuth against the configured provider, and API keys.
    OAuth(OAuth),
    /// No OAuth client is configured: connections use API keys only, which
    /// is what EmailOctopus's public API takes.
    ApiKeysOnly,
    /// The built-in provider and fake API, with secrets made for the run.
    Sandbox(Sandbox),
}

impl<OAuth, Sandbox> RunMode<OAuth, Sandbox> {
    /// How `/readyz` and `GET /connections` name this mode.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OAuth(_) => "oauth",
            Self::ApiKeysOnly => "api_keys",
            Self::Sandbox(_) => "sandbox",
        }
    }

    /// The same mode, with what `oauth` or `sandbox` makes of its contents.
    pub fn map<ToOAuth, ToSandbox>(
        self,
        oauth: impl FnOnce(OAuth) -> ToOAuth,
        sandbox: impl FnOnce(Sandbox) -> ToSandbox,
    ) -> RunMode<ToOAuth, ToSandbox> {
        match self {
            Self::OAuth(settings) => RunMode::OAuth(oauth(settings)),
            Self::ApiKeysOnly => RunMode::ApiKeysOnly,
            Self::Sandbox(settings) => RunMode::Sandbox(sandbox(settings)),
        }
    }
}

impl<Provider> RunMode<Provider, Provider> {
    /// The OAuth provider, the configured one or the sandbox's; `None` with
    /// API keys only.
    pub fn provider(&self) -> Option<&Provider> {
        match self {
            Self::OAuth(provider) | Self::Sandbox(provider) => Some(provider),
            Self::ApiKeysOnly => None,
        }
    }
}
