// Network settings from the environment: proxies (HTTPS through a CONNECT tunnel, plain HTTP in
// absolute form, Proxy-Authorization from the proxy URL, NO_PROXY, a proxy that refuses) and
// the CA bundle variables of corporate networks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { NetworkError, UnauthorizedError, UsageError } from '../src/errors.js';
import { Http1Client } from '../src/http/client.js';
import { proxyFor } from '../src/http/proxy.js';
import { startTestHub } from './fixtures/test-hub.js';
import { ROOT, spawnCli, tempDir } from './helpers.js';

const certDir = path.join(ROOT, 'test/fixtures/tls'); // a self-signed test certificate (localhost, hub.example)
const cert = fs.readFileSync(path.join(certDir, 'cert.pem'));
const opts = { headers: {}, headersTimeoutMs: 5000 };

const big = crypto.randomBytes(6 << 20);
let httpsPort = 0;
let httpPort = 0;
const servers: Array<http.Server> = [];

/** What the test proxy saw. */
const seen: { connects: string[]; requests: string[]; auth: Array<string | undefined> } = {
  connects: [],
  requests: [],
  auth: [],
};
let proxyUrl = '';
let proxyServer: net.Server;
/** When set, the proxy answers 407 unless this Proxy-Authorization arrives. */
let requiredAuth: string | undefined;

/** `hub.example` exists only for the proxy: it sends it to the local servers (other ports as they are). */
function upstream(authority: string): number {
  const [host, port] = authority.split(':');
  if (host !== 'hub.example') return 0;
  return port === '443' ? httpsPort : port === '80' ? httpPort : Number(port);
}

before(async () => {
  const body = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-length': big.length });
      res.end(big);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello from ${req.url}`);
  };
  const tlsServer = https.createServer({ key: fs.readFileSync(path.join(certDir, 'key.pem')), cert }, body);
  const plainServer = http.createServer(body);
  for (const s of [tlsServer, plainServer]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  httpsPort = (tlsServer.address() as AddressInfo).port;
  httpPort = (plainServer.address() as AddressInfo).port;

  proxyServer = net.createServer((client) => {
    client.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let target: net.Socket | undefined;
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const [line = '', ...fields] = head.split('\r\n');
        const auth = fields.find((f) => /^proxy-authorization:/i.test(f))?.replace(/^[^:]+:\s*/, '');
        seen.auth.push(auth);
        if (requiredAuth && auth !== requiredAuth) {
          client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        const [method = '', uri = ''] = line.split(' ');
        if (method === 'CONNECT') {
          seen.connects.push(uri);
          const port = upstream(uri);
          if (!port) {
            client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
            return;
          }
          client.off('data', onData);
          const tunnel = net.connect(port, '127.0.0.1', () => {
            client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
            tunnel.pipe(client);
            client.pipe(tunnel);
          });
          tunnel.on('error', () => client.destroy());
          return;
        }
        // Absolute form: forward in origin form to the upstream, on one connection per client.
        seen.requests.push(`${method} ${uri}`);
        const u = new URL(uri);
        if (!target) {
          target = net.connect(upstream(`${u.hostname}:${u.port || 80}`), '127.0.0.1');
          target.pipe(client);
          target.on('error', () => client.destroy());
        }
        const rest = fields.filter((f) => !/^proxy-authorization:/i.test(f));
        target.write(`${method} ${u.pathname}${u.search} HTTP/1.1\r\n${rest.join('\r\n')}\r\n\r\n`);
      }
    };
    client.on('data', onData);
  });
  await new Promise<void>((r) => proxyServer.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxyServer.address() as AddressInfo).port}`;
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  await new Promise<void>((r) => proxyServer.close(() => r()));
});

async function text(client: Http1Client, url: string): Promise<string> {
  const res = await client.get(url, opts);
  assert.equal(res.status, 200);
  return res.text(4096);
}

test('HTTPS_PROXY: https goes through a CONNECT tunnel (TLS end to end), kept alive', async () => {
  seen.connects.length = 0;
  const client = new Http1Client({ env: { HTTPS_PROXY: proxyUrl }, tls: { ca: cert } });
  try {
    assert.equal(await text(client, 'https://hub.example/api/models/a'), 'hello from /api/models/a');
    assert.equal(await text(client, 'https://hub.example/api/models/b'), 'hello from /api/models/b');
    assert.deepEqual(seen.connects, ['hub.example:443'], 'one tunnel, reused');
  } finally {
    client.close();
  }
});

test('a large body through the tunnel, read with pauses, arrives intact', async () => {
  const client = new Http1Client({ env: { HTTPS_PROXY: proxyUrl }, tls: { ca: cert } });
  try {
    const res = await client.get('https://hub.example/big', opts);
    const got = await new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      const space = Buffer.alloc(1 << 20);
      res.consume({
        space: () => space,
        data: (n) => {
          parts.push(Buffer.from(space.subarray(0, n)));
          if (parts.length % 7 !== 0) return true;
          setTimeout(() => res.resume(), 2);
          return false;
        },
        end: () => resolve(Buffer.concat(parts)),
        error: reject,
      });
    });
    assert.ok(got.equals(big));
  } finally {
    client.close();
  }
});

test('HTTP_PROXY: plain http is sent to the proxy with the full URL', async () => {
  seen.requests.length = 0;
  const client = new Http1Client({ env: { http_proxy: proxyUrl.replace('http://', '') } });
  try {
    assert.equal(await text(client, 'http://hub.example/x?y=1'), 'hello from /x?y=1');
    assert.equal(await text(client, 'http://hub.example/z'), 'hello from /z');
    assert.deepEqual(seen.requests, ['GET http://hub.example/x?y=1', 'GET http://hub.example/z']);
  } finally {
    client.close();
  }
});

test('credentials in the proxy URL become Proxy-Authorization; without them a 407 is an UnauthorizedError', async () => {
  requiredAuth = `Basic ${Buffer.from('alice:s3cr:t').toString('base64')}`;
  try {
    seen.auth.length = 0;
    const withAuth = new Http1Client({
      env: { HTTPS_PROXY: `http://alice:s3cr%3At@${proxyUrl.slice(7)}` },
      tls: { ca: cert },
    });
    assert.equal(await text(withAuth, 'https://hub.example/ok'), 'hello from /ok');
    withAuth.close();
    assert.deepEqual(seen.auth, [requiredAuth], 'the proxy saw the credentials once, in the CONNECT');
    const without = new Http1Client({ env: { HTTPS_PROXY: proxyUrl }, tls: { ca: cert } });
    await assert.rejects(
      without.get('https://hub.example/ok', opts),
      (err: unknown) =>
        err instanceof UnauthorizedError &&
        /407/.test(err.message) &&
        /HTTPS_PROXY=http:\/\/user:password@/.test(err.hint ?? ''),
    );
    without.close();
  } finally {
    requiredAuth = undefined;
  }
});

test('a proxy that cannot reach the host: a NetworkError naming the proxy and the answer', async () => {
  const client = new Http1Client({ env: { HTTPS_PROXY: proxyUrl }, tls: { ca: cert } });
  await assert.rejects(
    client.get('https://elsewhere.example/', opts),
    (err: unknown) =>
      err instanceof NetworkError && /refused the tunnel to elsewhere\.example:443: HTTP 502/.test(err.message),
  );
  client.close();
});

test('NO_PROXY, loopback and proxy URL rules', () => {
  const env = { HTTPS_PROXY: 'http://p:3128', NO_PROXY: 'internal.corp, .example.org,mirror.lan:8443' };
  const via = (u: string, e: Record<string, string> = env): string | undefined => proxyFor(new URL(u), e)?.url.host;
  assert.equal(via('https://huggingface.co/x'), 'p:3128');
  assert.equal(via('https://internal.corp/x'), undefined);
  assert.equal(via('https://a.internal.corp/x'), undefined, 'subdomains of an entry');
  assert.equal(via('https://example.org/x'), undefined, '.domain matches the domain itself');
  assert.equal(via('https://cdn.example.org/x'), undefined);
  assert.equal(via('https://mirror.lan:8443/x'), undefined, 'host:port entry');
  assert.equal(via('https://mirror.lan/x'), 'p:3128', 'other port: proxied');
  assert.equal(via('https://127.0.0.1:8080/x'), undefined, 'loopback is never proxied');
  assert.equal(via('https://localhost/x'), undefined);
  assert.equal(via('http://huggingface.co/x'), undefined, 'HTTPS_PROXY is for https only');
  assert.equal(via('http://huggingface.co/x', { ALL_PROXY: 'http://q:8080' }), 'q:8080');
  assert.equal(via('https://huggingface.co/x', { HTTPS_PROXY: 'http://p:3128', no_proxy: '*' }), undefined);
  assert.throws(() => via('https://huggingface.co/x', { HTTPS_PROXY: 'socks5://p:1080' }), UsageError);
});

test('hubcache download through HTTP_PROXY: the API goes through the proxy, the loopback CDN does not', async () => {
  const hub = await startTestHub();
  try {
    hub.hf
      .createRepo('org/proxied')
      .commit({ 'config.json': '{"a":1}', 'model.safetensors': { size: 2 * 1024 * 1024, seed: 5 } });
    const port = new URL(hub.hfEndpoint).port;
    seen.requests.length = 0;
    const cache = await tempDir();
    const r = await spawnCli(['download', 'org/proxied', '--cache-dir', cache, '--json'], {
      HF_ENDPOINT: `http://hub.example:${port}`,
      HTTP_PROXY: proxyUrl,
    }).done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      seen.requests.some((q) => q.startsWith(`GET http://hub.example:${port}/api/models/org/proxied`)),
      seen.requests.join('\n'),
    );
    assert.ok(
      fs.readFileSync(
        path.join(
          cache,
          'models--org--proxied/snapshots',
          fs.readdirSync(path.join(cache, 'models--org--proxied/snapshots'))[0] ?? '',
          'config.json',
        ),
        'utf8',
      ) === '{"a":1}',
    );
  } finally {
    await hub.close();
  }
});

test('REQUESTS_CA_BUNDLE / SSL_CERT_FILE add a private CA (with a proxy that inspects TLS, say)', async () => {
  const caFile = path.join(certDir, 'cert.pem');
  for (const name of ['REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE', 'CURL_CA_BUNDLE']) {
    const client = new Http1Client({ env: { HTTPS_PROXY: proxyUrl, [name]: caFile } });
    assert.equal(await text(client, 'https://hub.example/ca'), 'hello from /ca', name);
    client.close();
  }
  const strict = new Http1Client({ env: { HTTPS_PROXY: proxyUrl } });
  await assert.rejects(
    strict.get('https://hub.example/ca', opts),
    NetworkError,
    'without the bundle the certificate is refused',
  );
  strict.close();
  assert.throws(() => new Http1Client({ env: { SSL_CERT_FILE: path.join(certDir, 'missing.pem') } }), UsageError);
  assert.throws(
    () => new Http1Client({ env: { SSL_CERT_FILE: path.join(ROOT, 'package.json') } }),
    /no PEM certificate/,
  );
});
