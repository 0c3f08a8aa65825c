#!/usr/bin/env node
// A real OpenID provider for Timebox's tests and local demo: the OpenID-certified npm
// package `oidc-provider`, with one confidential client (Timebox), a few users with a
// `groups` claim, and a plain login form of our own so that a user's sign-in can
// carry MFA (`amr: ["pwd", "otp"]`), as a real provider's second factor would.
//
//   node provider.mjs --port 9000 \
//     --client-id timebox --client-secret <secret> \
//     --redirect-uri http://127.0.0.1:3000/auth/callback \
//     --post-logout-redirect-uri http://127.0.0.1:3000/
//
// --port 0 picks a free port. When it is ready it prints one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:9000","users":[...]}
// Each start generates its own signing keys: a second instance is an unrelated issuer
// (the tests use one to make tokens from another issuer).
import http from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

/** The demo and test users. Every password is the user's name + "-password". */
export const USERS = {
  rita: { name: 'Rita Requester', groups: ['timebox-requesters'], role: 'requester', amr: ['pwd'] },
  arno: { name: 'Arno Approver', groups: ['timebox-approvers'], role: 'approver (no MFA)', amr: ['pwd'] },
  mia: { name: 'Mia Approver', groups: ['timebox-approvers'], role: 'approver with MFA', amr: ['pwd', 'otp'] },
  audrey: { name: 'Audrey Auditor', groups: ['timebox-auditors'], role: 'auditor', amr: ['pwd'] },
  ada: { name: 'Ada Admin', groups: ['timebox-admins'], role: 'admin', amr: ['pwd'] },
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
  <button type="submit">Sign in</button>
</form>
<details><summary>Demo users</summary><ul>${rows}</ul></details>`);
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
 * Starts the provider. Resolves to { issuer, server, close() }.
 * options: { port, host, clientId, clientSecret, redirectUris, postLogoutRedirectUris }
 */
export async function startProvider(options) {
  const host = options.host ?? '127.0.0.1';
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
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    // Every sign-in must use PKCE.
    pkce: { required: () => true },
    claims: {
      // How the person signed in (amr: ["pwd", "otp"] after a second factor) goes
      // with every ID token, as with providers that always send it.
      openid: ['sub', 'amr', 'auth_time'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
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
      const user = USERS[id];
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            name: user.name,
            preferred_username: id,
            email: `${id}@example.test`,
            email_verified: true,
            groups: user.groups,
          };
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
      const interaction = path.match(/^\/interaction\/([^/]+)(\/login)?$/);
      if (!interaction) return callback(req, res);
      const details = await provider.interactionDetails(req, res);
      const { uid, prompt, params, session } = details;
      if (prompt.name === 'login') {
        if (req.method === 'POST' && interaction[2]) {
          const form = await readForm(req);
          const user = USERS[form.login];
          if (!user || form.password !== passwordOf(form.login)) {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            return res.end(loginForm(uid, params.client_id, 'Wrong user name or password.'));
          }
          return provider.interactionFinished(req, res, {
            login: { accountId: form.login, amr: user.amr, remember: true },
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

  return {
    issuer,
    server,
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
    },
  });
  if (!values['client-secret'] || !values['redirect-uri']) {
    console.error('usage: provider.mjs --port N --client-id ID --client-secret S --redirect-uri URL [--post-logout-redirect-uri URL]');
    process.exit(2);
  }
  const p = await startProvider({
    port: Number(values.port),
    host: values.host,
    clientId: values['client-id'],
    clientSecret: values['client-secret'],
    redirectUris: values['redirect-uri'],
    postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? [],
  });
  const users = Object.entries(USERS).map(([id, u]) => ({
    user: id, password: passwordOf(id), role: u.role, groups: u.groups,
  }));
  console.log(JSON.stringify({ issuer: p.issuer, users }));
  const stop = async () => { await p.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
