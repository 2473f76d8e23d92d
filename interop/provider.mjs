// An independent OAuth 2.0 authorization server for tests/it/interop.rs:
// node's oidc-provider (OpenID-certified), configured the way a production
// provider would be, not the way the server under test would like it.
//
//   - the authorization-code grant only, PKCE required (S256 is the only
//     method oidc-provider 9 knows), `iss` in every authorization response
//     (RFC 9207; always on in oidc-provider 9, advertised in discovery);
//   - two confidential clients, `interop-client_secret_post` and
//     `interop-client_secret_basic`, each held to its own auth method;
//   - a refresh token with every code exchange, rotated on every use (reusing
//     an old one revokes the whole grant), short-lived access tokens;
//   - RFC 7009 revocation and RFC 7662 introspection on;
//   - its own login and consent pages (devInteractions: any login name and
//     password signs in, "Continue" consents).
//
// Environment: CLIENT_SECRET (required; both clients share it),
// ACCESS_TOKEN_TTL (seconds, default 120).
//
// The conversation on stdin and stdout, one line each:
//   provider -> `issuer http://127.0.0.1:PORT`  listening; discovery served
//   test     -> `redirect_uri URL`               the server's callback, known
//                                                only once the server runs
//   provider -> `clients ready`                  both clients take that URI
//   provider -> `event {json}`                   one per token, revocation or
//                                                authorization outcome
// The provider exits when stdin closes, so it never outlives its test.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import Provider from 'oidc-provider';

const AUTH_METHODS = ['client_secret_post', 'client_secret_basic'];
const SCOPES = ['lists:read', 'lists:write'];

const clientSecret = process.env.CLIENT_SECRET;
if (!clientSecret) {
  console.error('provider.mjs: CLIENT_SECRET is required');
  process.exit(2);
}
const accessTokenTtl = Number(process.env.ACCESS_TOKEN_TTL ?? 120);

// Signing keys and cookie keys made for this run (oidc-provider would
// otherwise fall back to its development-only ones).
const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  use: 'sig',
  alg: 'RS256',
};
const cookieKeys = [randomBytes(32).toString('base64url')];

function configuration(redirectUri) {
  return {
    clients: redirectUri === undefined ? [] : AUTH_METHODS.map((method) => ({
      client_id: `interop-${method}`,
      client_secret: clientSecret,
      token_endpoint_auth_method: method,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: SCOPES.join(' '),
    })),
    scopes: ['openid', 'offline_access', ...SCOPES],
    responseTypes: ['code'],
    // The token request must repeat redirect_uri, even with one registered.
    allowOmittingSingleRegisteredRedirectUri: false,
    pkce: { required: () => true },
    // A confidential client with the refresh_token grant gets a refresh token
    // without asking for offline_access (which oidc-provider would otherwise
    // honour only with prompt=consent), and keeps it after the browser
    // session at the provider ends.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Session: 3600,
      Interaction: 600,
      IdToken: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    jwks: { keys: [signingKey] },
    cookies: { keys: cookieKeys },
  };
}

function emit(event) {
  process.stdout.write(`event ${JSON.stringify(event)}\n`);
}

/** How the client authenticated this request, as the wire shows it. */
function authUsed(ctx) {
  if (/^basic /i.test(ctx.get('authorization'))) return 'client_secret_basic';
  if (ctx.oidc?.body?.client_secret !== undefined) return 'client_secret_post';
  return 'none';
}

function build(issuer, redirectUri) {
  const provider = new Provider(issuer, configuration(redirectUri));
  provider.on('grant.success', (ctx) => emit({
    name: 'grant.success',
    grant_type: ctx.oidc.params.grant_type,
    client_id: ctx.oidc.client.clientId,
    auth: authUsed(ctx),
  }));
  provider.on('refresh_token.consumed', (token) => emit({
    name: 'refresh_token.consumed',
    client_id: token.clientId,
  }));
  provider.on('grant.revoked', (ctx) => emit({
    name: 'grant.revoked',
    route: ctx.oidc.route,
    client_id: ctx.oidc.client?.clientId,
    token_type_hint: ctx.oidc.params?.token_type_hint,
    auth: authUsed(ctx),
  }));
  provider.on('authorization.success', (ctx, out) => emit({
    name: 'authorization.success',
    client_id: ctx.oidc.client.clientId,
    iss: out.iss,
    code_challenge_method: ctx.oidc.params.code_challenge_method,
    scope: ctx.oidc.params.scope,
  }));
  for (const name of ['authorization.error', 'grant.error', 'revocation.error', 'introspection.error', 'server_error']) {
    provider.on(name, (ctx, error) => emit({
      name,
      error: error.error ?? error.name,
      error_description: error.error_description ?? error.message,
    }));
  }
  return provider;
}

// Bind first, so that the issuer can carry the real port; the clients are
// registered once the test tells us the redirect URI. Until then a provider
// without clients answers (discovery included).
let handler = () => {};
const server = createServer((req, res) => handler(req, res));
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  handler = build(issuer).callback();
  process.stdout.write(`issuer ${issuer}\n`);

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [command, value] = line.trim().split(/\s+/, 2);
    if (command === 'redirect_uri' && value) {
      handler = build(issuer, value).callback();
      process.stdout.write('clients ready\n');
    } else {
      console.error(`provider.mjs: unknown command: ${line}`);
    }
  });
  lines.on('close', () => process.exit(0));
});
