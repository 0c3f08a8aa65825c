#!/usr/bin/env node
// A real OpenID provider for Timebox's tests and local demo: the OpenID-certified npm
// package `oidc-provider`, with one confidential client (Timebox), a few users with a
// `groups` claim, and a plain login form of our own so that a user's sign-in can
// carry MFA (`amr: ["pwd", "otp"]`), as a real provider's second factor would: users
// marked `mfa` always use it, and anyone who also types the one-time code (ONE_TIME_CODE,
// the same for every demo user) signs in with it, which is how a step-up is tested.
//
//   node provider.mjs --port 9000 \
//     --client-id timebox --client-secret <secret> \
//     --redirect-uri http://127.0.0.1:3000/auth/callback \
//     --post-logout-redirect-uri http://127.0.0.1:3000/
//
// --port 0 picks a free port. --profile picks how the provider names people and groups,
// as the identity providers Timebox meets in production do (see PROFILES below):
//   plain   sub = the user name, groups as names, amr ["pwd","otp"] after MFA (default)
//   entra   Microsoft Entra ID: opaque pairwise sub, oid, tid, upn/preferred_username
//           name@corp.example, groups as object ids (GUIDs), amr ["pwd","mfa"]; a user
//           in more than 200 groups gets the overage pointer (_claim_names) instead
//   okta    Okta: sub 00u…, preferred_username/email name@corp.example, groups as names
//   google  Google Workspace: numeric sub, email, hd, no groups claim, no amr
// When it is ready it prints one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:9000","profile":"plain","users":[...],"timebox":{...}}
// with each user's claims as this profile sends them (tests read sub, oid, groups),
// and under "timebox" what Timebox must be told for this profile (TIMEBOX_SETTINGS):
// the environment settings, and the domain of the Identity Store user names
// (.ci/seed_moto.py --domain).
//
// Test control (for the tests only, guarded by the client secret as a bearer token):
//   POST /test-control/users/<login>  {"groups":[...]}   changes a user's groups (names);
//   the next ID token (a refresh or a new sign-in) carries the new groups.
//   POST /test-control/users/<login>  {"auth_age_seconds":N}   back-dates the user's
//   next sign-in by N seconds (its auth_time), as if they had authenticated earlier.
// Refresh tokens are issued to the client (grant type refresh_token), so a relying party
// can re-check a person's groups without a new sign-in.
// Each start generates its own signing keys: a second instance is an unrelated issuer
// (the tests use one to make tokens from another issuer).
import http from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import Provider from 'oidc-provider';

/** The second factor of the demo: typed with the password, the sign-in carries MFA. */
export const ONE_TIME_CODE = '123456';

/** The demo and test users. Every password is the user's name + "-password". */
export const USERS = {
  rita: { name: 'Rita Requester', groups: ['timebox-requesters'], role: 'requester', mfa: false },
  arno: { name: 'Arno Approver', groups: ['timebox-approvers'], role: 'approver (no MFA)', mfa: false },
  mia: { name: 'Mia Approver', groups: ['timebox-approvers'], role: 'approver with MFA', mfa: true },
  audrey: { name: 'Audrey Auditor', groups: ['timebox-auditors'], role: 'auditor', mfa: false },
  ada: { name: 'Ada Admin', groups: ['timebox-admins'], role: 'admin', mfa: false },
  // Entra sends no group list for a member of more than 200 groups (the overage case).
  olga: { name: 'Olga Overage', groups: ['timebox-requesters'], role: 'requester in 250 groups', mfa: false, groupCount: 250 },
};

/** Entra's fixed ids: the tenant, and an object id per group (what its groups claim holds). */
export const ENTRA_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const ENTRA_GROUP_IDS = {
  'timebox-requesters': '5f1c6a1e-0b7d-4c5e-9a51-3d2f7e8a9b01',
  'timebox-approvers': '8a3e2b7c-4d1f-4e6a-b2c9-6f0d1e2a3b02',
  'timebox-auditors': '2c9d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e03',
  'timebox-admins': '7b6a5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c04',
};
export const DOMAIN = 'corp.example';

const digest = (...parts) => createHash('sha256').update(parts.join('\u0000')).digest();
/** A GUID derived from a name (stable across runs, like an object id). */
const guidOf = (name) => {
  const h = digest('guid', name).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * How each profile names a person and their groups. `claims(login, user, clientId)`
 * gives the claims of the ID token; `mfaAmr` what `amr` holds after a second factor.
 */
export const PROFILES = {
  plain: {
    amr: (u) => (u.mfa ? ['pwd', 'otp'] : ['pwd']),
    claims: (login, u) => ({
      sub: login,
      name: u.name,
      preferred_username: login,
      email: `${login}@example.test`,
      email_verified: true,
      groups: u.groups,
    }),
  },
  entra: {
    amr: (u) => (u.mfa ? ['pwd', 'mfa'] : ['pwd']),
    claims: (login, u, clientId) => {
      const oid = guidOf(`entra-user:${login}`);
      const upn = `${login}@${DOMAIN}`;
      const base = {
        // Pairwise: the same person has another sub in another application.
        sub: digest('entra-sub', ENTRA_TENANT, clientId, oid).toString('base64url').slice(0, 43),
        oid,
        tid: ENTRA_TENANT,
        name: u.name,
        preferred_username: upn,
        upn,
        email: upn,
      };
      if ((u.groupCount ?? u.groups.length) > 200) {
        // The overage pointer: the groups must be read from Microsoft Graph.
        return {
          ...base,
          _claim_names: { groups: 'src1' },
          _claim_sources: { src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${oid}/getMemberObjects` } },
        };
      }
      return { ...base, groups: u.groups.map((g) => ENTRA_GROUP_IDS[g] ?? guidOf(`entra-group:${g}`)) };
    },
  },
  okta: {
    amr: (u) => (u.mfa ? ['mfa', 'otp', 'pwd'] : ['pwd']),
    claims: (login, u) => {
      const bytes = digest('okta', login);
      const id = Array.from(bytes.subarray(0, 17), (b) => BASE62[b % 62]).join('');
      return {
        sub: `00u${id}`,
        name: u.name,
        preferred_username: `${login}@${DOMAIN}`,
        email: `${login}@${DOMAIN}`,
        email_verified: true,
        groups: u.groups,
      };
    },
  },
  google: {
    // Google does not say how a person signed in.
    amr: () => undefined,
    claims: (login, u) => {
      const n = digest('google', login).readBigUInt64BE(0) % 10n ** 20n;
      return {
        sub: `1${n.toString().padStart(20, '0')}`,
        name: u.name,
        email: `${login}@${DOMAIN}`,
        email_verified: true,
        hd: DOMAIN,
      };
    },
  },
};

export const passwordOf = (user) => `${user}-password`;

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}label{display:block;margin:.6rem 0}
input{display:block;width:100%;padding:.4rem}button{margin-top:1rem;padding:.5rem 1rem}.error{color:#b00}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, clientId, error) {
  const rows = Object.entries(USERS)
    .map(([id, u]) => `<li><code>${id}</code> / <code>${passwordOf(id)}</code>: ${escape(u.role)}</li>`)
    .join('');
  return page('Sign in to the test provider', `
<p>Signing in to <strong>${escape(clientId)}</strong>.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>User name <input name="login" required autofocus></label>
  <label>Password <input name="password" type="password" required></label>
  <label>One-time code (optional: your second factor) <input name="otp" inputmode="numeric" autocomplete="one-time-code"></label>
  <button type="submit">Sign in</button>
</form>
<details><summary>Demo users</summary><ul>${rows}</ul>
<p>The one-time code of every demo user is <code>${ONE_TIME_CODE}</code>.</p></details>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

/**
 * What Timebox is configured with for each profile (environment variables, as
 * docs/identity.md gives the settings for each provider), and the domain of the
 * Identity Store's user names when the provider provisions Identity Center over SCIM
 * with the user principal name (null: user names are the logins).
 */
export const TIMEBOX_SETTINGS = {
  plain: { env: {}, userDomain: null },
  entra: {
    env: {
      TIMEBOX_OIDC__PERSON_CLAIM: 'preferred_username',
      TIMEBOX_OIDC__GROUP_NAMES: Object.entries(ENTRA_GROUP_IDS).map(([name, id]) => `${id}=${name}`).join(', '),
    },
    userDomain: DOMAIN,
  },
  okta: { env: { TIMEBOX_OIDC__PERSON_CLAIM: 'preferred_username' }, userDomain: DOMAIN },
  // No groups claim at Google: roles by person (oidc.*_people). Google reports no
  // MFA either, so approving needs an acr setting this provider does not send.
  google: {
    env: {
      TIMEBOX_OIDC__PERSON_CLAIM: 'email',
      TIMEBOX_OIDC__REQUESTER_PEOPLE: `rita@${DOMAIN}`,
      TIMEBOX_OIDC__APPROVER_PEOPLE: `arno@${DOMAIN}, mia@${DOMAIN}`,
      TIMEBOX_OIDC__AUDITOR_PEOPLE: `audrey@${DOMAIN}`,
      TIMEBOX_OIDC__ADMIN_PEOPLE: `ada@${DOMAIN}`,
    },
    userDomain: DOMAIN,
  },
};

/**
 * Starts the provider. Resolves to { issuer, profile, users, server, setGroups(), close() }.
 * options: { port, host, clientId, clientSecret, redirectUris, postLogoutRedirectUris, profile }
 */
export async function startProvider(options) {
  const host = options.host ?? '127.0.0.1';
  const profileName = options.profile ?? 'plain';
  const profile = PROFILES[profileName];
  if (!profile) throw new Error(`unknown profile ${profileName}; use one of ${Object.keys(PROFILES).join(', ')}`);
  // This instance's users: their groups can change while it runs (test control).
  const users = Object.fromEntries(Object.entries(USERS).map(([id, u]) => [id, { ...u, groups: [...u.groups] }]));
  const claimsOf = (login) => profile.claims(login, users[login], options.clientId);
  const loginOfSub = (sub) => Object.keys(users).find((login) => claimsOf(login).sub === sub);
  const server = http.createServer();
  server.listen(options.port ?? 0, host);
  await once(server, 'listening');
  const issuer = `http://${host}:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: options.clientId,
      client_secret: options.clientSecret,
      redirect_uris: options.redirectUris,
      post_logout_redirect_uris: options.postLogoutRedirectUris ?? [],
      // Refresh tokens let Timebox re-check a person's groups without a sign-in.
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    // Every sign-in must use PKCE.
    pkce: { required: () => true },
    claims: {
      // How the person signed in (amr: ["pwd", "otp"] after a second factor) goes
      // with every ID token, as with providers that always send it.
      openid: ['sub', 'amr', 'auth_time', 'acr'],
      profile: ['name', 'preferred_username', 'oid', 'tid', 'upn'],
      email: ['email', 'email_verified', 'hd'],
      groups: ['groups', '_claim_names', '_claim_sources'],
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Every refresh token is single-use (rotated at each refresh, as Entra ID does and
    // Okta with rotation on): a spent one is refused, and the grant with it.
    rotateRefreshToken: () => true,
    scopes: ['openid', 'profile', 'email', 'groups'],
    // Put the requested claims (groups among them) into the ID token itself.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['timebox-test-provider-cookie-key'] },
    ttl: { IdToken: 3600, AccessToken: 600, AuthorizationCode: 60, Session: 3600, Interaction: 600, Grant: 3600 },
    async findAccount(ctx, id) {
      // The account id is the profile's sub (an opaque id at Entra, Okta and Google,
      // as the ID token says it); the login is how the form names the person.
      const login = loginOfSub(id);
      if (!login) return undefined;
      return {
        accountId: id,
        async claims() {
          return claimsOf(login);
        },
      };
    },
  });
  // Quiet: the provider's own "dev" warnings are about this being a test setup.
  provider.on('server_error', (ctx, err) => console.error('provider error:', err));

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    try {
      const path = new URL(req.url, issuer).pathname;
      const control = path.match(/^\/test-control\/users\/([^/]+)$/);
      if (control) return testControl(req, res, control[1]);
      const interaction = path.match(/^\/interaction\/([^/]+)(\/login)?$/);
      if (!interaction) return callback(req, res);
      const details = await provider.interactionDetails(req, res);
      const { uid, prompt, params, session } = details;
      if (prompt.name === 'login') {
        if (req.method === 'POST' && interaction[2]) {
          const form = await readForm(req);
          const user = users[form.login];
          if (!user || form.password !== passwordOf(form.login)) {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            return res.end(loginForm(uid, params.client_id, 'Wrong user name or password.'));
          }
          if (form.otp && form.otp !== ONE_TIME_CODE) {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            return res.end(loginForm(uid, params.client_id, 'Wrong one-time code.'));
          }
          const ts = Math.floor(Date.now() / 1000) - (user.authAge ?? 0);
          delete user.authAge;
          const factors = { ...user, mfa: user.mfa || form.otp === ONE_TIME_CODE };
          return provider.interactionFinished(req, res, {
            login: { accountId: claimsOf(form.login).sub, amr: profile.amr(factors), remember: true, ts },
          }, { mergeWithLastSubmission: false });
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(loginForm(uid, params.client_id));
      }
      if (prompt.name === 'consent') {
        // Timebox is the organisation's own application: consent is implied.
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
        if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
        const grantId = await grant.save();
        return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`unsupported prompt ${prompt.name}`);
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    }
  });

  function setGroups(login, groups) {
    if (!users[login]) return false;
    users[login].groups = [...groups];
    delete users[login].groupCount;
    return true;
  }

  async function testControl(req, res, login) {
    const auth = req.headers.authorization ?? '';
    if (req.method !== 'POST' || auth !== `Bearer ${options.clientSecret}`) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      return res.end('forbidden');
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const { groups, auth_age_seconds: authAge } = JSON.parse(body || '{}');
    const who = decodeURIComponent(login);
    if (Number.isInteger(authAge) && users[who] && groups === undefined) {
      users[who].authAge = authAge;
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ login, auth_age_seconds: authAge }));
    }
    if (!Array.isArray(groups) || !setGroups(who, groups)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('no such user, or no groups list');
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ login, claims: claimsOf(decodeURIComponent(login)) }));
  }

  const described = () => Object.entries(users).map(([id, u]) => ({
    user: id, password: passwordOf(id), role: u.role, groups: u.groups, mfa: u.mfa, amr: profile.amr(u) ?? null, claims: claimsOf(id),
  }));

  return {
    issuer,
    profile: profileName,
    users: described,
    server,
    setGroups,
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/provider.mjs')) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9000' },
      host: { type: 'string', default: '127.0.0.1' },
      'client-id': { type: 'string', default: 'timebox' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      profile: { type: 'string', default: process.env.TIMEBOX_OIDC_PROFILE ?? 'plain' },
    },
  });
  if (!values['client-secret'] || !values['redirect-uri']) {
    console.error('usage: provider.mjs --port N --client-id ID --client-secret S --redirect-uri URL [--post-logout-redirect-uri URL] [--profile plain|entra|okta|google]');
    process.exit(2);
  }
  const p = await startProvider({
    port: Number(values.port),
    host: values.host,
    clientId: values['client-id'],
    clientSecret: values['client-secret'],
    redirectUris: values['redirect-uri'],
    postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? [],
    profile: values.profile,
  });
  console.log(JSON.stringify({ issuer: p.issuer, profile: p.profile, users: p.users(), timebox: TIMEBOX_SETTINGS[p.profile] }));
  const stop = async () => { await p.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
