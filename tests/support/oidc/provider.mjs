// A real OpenID provider for custos's tests: npm `oidc-provider` with the
// device flow, a public client `custos`, a confidential machine client, and
// test users whose groups come from the USERS environment variable.
//
// Environment: PORT (required), ISSUER (default http://127.0.0.1:PORT; a test
// sets another provider's issuer here to forge "a key from another issuer"),
// USERS (JSON: {"alice": ["sre"], ...}), ID_TTL and REFRESH_TTL in seconds.
// Prints "listening <issuer>" once it accepts connections.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const users = JSON.parse(process.env.USERS || '{}');
const idTtl = Number(process.env.ID_TTL || 3600);
const refreshTtl = Number(process.env.REFRESH_TTL || 86400);

// A fresh signing key per instance: two providers never share a key.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'custos',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'custos-machine',
      client_secret: 'machine-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys: [jwk] },
  features: {
    deviceFlow: { enabled: true },
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  // Put the scope's claims in the ID token itself: custos binds the header
  // to the ID token, not to userinfo.
  conformIdTokenClaims: false,
  issueRefreshToken: async () => true,
  ttl: { IdToken: idTtl, RefreshToken: refreshTtl, AccessToken: 3600, DeviceCode: 600, Grant: 86400, Session: 86400, Interaction: 600 },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: `${id}@example.test`,
      email_verified: true,
      name: `Test ${id}`,
      groups: users[id] || [],
    }),
  }),
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
