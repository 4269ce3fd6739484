// The transfer engine's HTTP/1.1 body client, against raw TCP/TLS servers that send exactly the
// bytes each test wants (framing edge cases, hostile heads, dropped and stale connections).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { AbortedError, NetworkError, ServerError, UsageError } from '../src/errors.js';
import { ChunkedDecoder } from '../src/http/chunked.js';
import { Http1Client, type Http1Response } from '../src/http/client.js';
import { ROOT } from './helpers.js';

/** A TCP server whose handler sees each request head and writes raw bytes back. */
async function rawServer(
  onRequest: (socket: net.Socket, head: string, n: number) => void,
): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        onRequest(socket, head, ++requests);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Runs `body` against a raw server and a fresh client, closing both afterwards. */
async function withRawServer(
  onRequest: (socket: net.Socket, head: string, n: number) => void,
  body: (srv: Awaited<ReturnType<typeof rawServer>>, client: Http1Client) => Promise<void>,
): Promise<void> {
  const srv = await rawServer(onRequest);
  const client = new Http1Client();
  try {
    await body(srv, client);
  } finally {
    client.close();
    await srv.close();
  }
}

/** Reads a whole body through small, odd-sized consumer buffers (so reads split everywhere). */
function readAll(res: Http1Response, spaceSize = 7): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let space = Buffer.alloc(spaceSize);
    res.consume({
      space: () => space,
      data: (n) => {
        parts.push(Buffer.from(space.subarray(0, n)));
        space = Buffer.alloc(spaceSize);
        return true;
      },
      end: () => resolve(Buffer.concat(parts)),
      error: reject,
    });
  });
}

const opts = { headers: {}, headersTimeoutMs: 5000 };

test('Content-Length bodies over one kept-alive connection; the request carries our headers', async () => {
  const body = crypto.randomBytes(300_000);
  const heads: string[] = [];
  await withRawServer(
    (s, head) => {
      heads.push(head);
      s.write(
        `HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\nContent-Range: bytes 0-${body.length - 1}/*\r\n\r\n`,
      );
      s.write(body);
    },
    async (srv, client) => {
      for (let i = 0; i < 3; i++) {
        const res = await client.get(`${srv.url}/a/b%20c?x=1&y=2`, {
          ...opts,
          headers: { Range: 'bytes=0-', 'User-Agent': 'ua/1' },
        });
        assert.equal(res.status, 206);
        assert.equal(res.contentLength, body.length);
        assert.equal(res.headers['content-range'], `bytes 0-${body.length - 1}/*`);
        assert.ok((await readAll(res, 65536)).equals(body));
      }
      assert.equal(srv.connections(), 1, 'keep-alive reuses the connection');
      assert.match(
        heads[0] ?? '',
        /^GET \/a\/b%20c\?x=1&y=2 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nRange: bytes=0-\r\nUser-Agent: ua\/1$/,
      );
    },
  );
});

test('chunked bodies, with extensions, trailers and bare LF, read through tiny buffers', async () => {
  await withRawServer(
    (s, _head, n) => {
      if (n === 1)
        s.write(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n',
        );
      else s.write('HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n\n3\nabc\n0\n\n');
    },
    async (srv, client) => {
      const a = await client.get(srv.url, opts);
      assert.equal((await readAll(a, 3)).toString(), 'hello 0123456789');
      const b = await client.get(srv.url, opts);
      assert.equal((await readAll(b, 1)).toString(), 'abc');
      assert.equal(srv.connections(), 1);
    },
  );
});

test('ChunkedDecoder gives the same body at every split point, and refuses bad framing', () => {
  const wire = Buffer.from('4\r\nWiki\r\n6;a=b\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\n');
  const expected = 'Wikipedia in \r\n\r\nchunks.';
  for (let cut = 0; cut <= wire.length; cut++) {
    const d = new ChunkedDecoder();
    const buf = Buffer.from(wire);
    const a = d.decode(buf, 0, cut);
    const first = buf.toString('latin1', 0, a.body);
    const b = d.decode(buf, cut, wire.length - cut);
    assert.equal(first + buf.toString('latin1', cut, cut + b.body), expected, `split at ${cut}`);
    assert.ok(d.done);
  }
  for (const bad of ['x\r\n', '4\r\nWikiXX', '\r\n', 'fffffffffffffffff\r\n']) {
    assert.throws(() => new ChunkedDecoder().decode(Buffer.from(bad), 0, bad.length), ServerError, bad);
  }
});

test('a body without length is read to the close; 204 and 1xx heads carry none', async () => {
  await withRawServer(
    (s, _h, n) => {
      if (n === 1) s.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
      else s.write('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
    },
    async (srv, client) => {
      const a = await client.get(srv.url, opts);
      assert.equal(a.contentLength, undefined);
      assert.equal((await readAll(a)).toString(), 'until close');
      const b = await client.get(srv.url, opts);
      assert.equal(b.status, 204);
      assert.equal((await readAll(b)).length, 0);
    },
  );
});

test('hostile or broken heads are refused with a ServerError', async () => {
  const cases: Array<[string, RegExp]> = [
    [`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, /headers larger than 64 KiB/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', /Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /Content-Length/],
    ['HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n', /folded/],
    ['SPDY/3 200 OK\r\n\r\n', /status line/],
    ['HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n', /header line/],
  ];
  for (const [response, message] of cases) {
    await withRawServer(
      (s) => s.write(response),
      async (srv, client) => {
        await assert.rejects(
          client.get(srv.url, opts),
          (err: unknown) => err instanceof ServerError && message.test(err.message),
        );
      },
    );
  }
});

test('a connection the server closed while idle is replaced without failing the request', async () => {
  await withRawServer(
    (s, _h, n) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      if (n === 1) setTimeout(() => s.destroy(), 20); // closes right after, without saying so
    },
    async (srv, client) => {
      assert.equal((await readAll(await client.get(srv.url, opts))).toString(), 'ok');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await readAll(await client.get(srv.url, opts))).toString(), 'ok');
      assert.equal(srv.connections(), 2);
    },
  );
});

test('Connection: close, and more bytes than announced, both end the connection after the body', async () => {
  await withRawServer(
    (s, _h, n) => {
      if (n === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA');
    },
    async (srv, client) => {
      assert.equal((await readAll(await client.get(srv.url, opts))).toString(), 'ok');
      assert.equal((await readAll(await client.get(srv.url, opts))).toString(), 'ok');
      assert.equal((await readAll(await client.get(srv.url, opts))).toString(), 'ok');
      assert.equal(srv.connections(), 3);
    },
  );
});

test('a connection dropped mid-body, a silent server and an abort each end clearly', async () => {
  await withRawServer(
    (s, head) => {
      if (head.includes('/drop')) {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial');
        setTimeout(() => s.destroy(), 20);
      } else if (head.includes('/slow-body')) {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc');
      } // '/silent': no answer at all
    },
    async (srv, client) => {
      const dropped = await client.get(`${srv.url}/drop`, opts);
      await assert.rejects(
        readAll(dropped),
        (err: unknown) => err instanceof NetworkError && /closed before the response ended/.test(err.message),
      );
      await assert.rejects(
        client.get(`${srv.url}/silent`, { headers: {}, headersTimeoutMs: 200 }),
        (err: unknown) => err instanceof NetworkError && /no response within/.test(err.message),
      );
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(client.get(`${srv.url}/silent`, { ...opts, signal: ac.signal }), AbortedError);
      const ac2 = new AbortController();
      const slow = await client.get(`${srv.url}/slow-body`, { ...opts, signal: ac2.signal });
      setTimeout(() => ac2.abort(), 50);
      await assert.rejects(readAll(slow), AbortedError);
    },
  );
});

test('pausing the consumer holds the socket; resume delivers the rest intact', async () => {
  const body = crypto.randomBytes(4 << 20);
  await withRawServer(
    (s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.write(body);
    },
    async (srv, client) => {
      const res = await client.get(srv.url, opts);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        const space = Buffer.alloc(256 * 1024);
        let pauses = 0;
        res.consume({
          space: () => space,
          data: (n) => {
            parts.push(Buffer.from(space.subarray(0, n)));
            if (parts.length % 5 !== 0) return true;
            pauses++;
            setTimeout(() => res.resume(), 5);
            return false;
          },
          end: () => (pauses > 0 ? resolve(Buffer.concat(parts)) : reject(new Error('never paused'))),
          error: reject,
        });
      });
      assert.ok(got.equals(body));
    },
  );
});

test('header values with line breaks are refused before anything is sent', async () => {
  const client = new Http1Client();
  await assert.rejects(
    client.get('http://127.0.0.1:9/', { ...opts, headers: { authorization: 'Bearer a\r\nX-Injected: 1' } }),
    UsageError,
  );
  await assert.rejects(client.get('ftp://127.0.0.1/x', opts), UsageError);
  client.close();
});

test('TLS: a body over https (private CA), reused connection; a wrong CA fails as a NetworkError', async () => {
  const dir = path.join(ROOT, 'test/fixtures/tls'); // a self-signed test certificate for 127.0.0.1
  const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
  const body = crypto.randomBytes(1 << 20);
  const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert }, (_req, res) => {
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let connections = 0;
  server.on('secureConnection', () => connections++);
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/f`;
  const client = new Http1Client({ tls: { ca: cert } });
  try {
    for (let i = 0; i < 2; i++) assert.ok((await readAll(await client.get(url, opts), 100_000)).equals(body));
    assert.equal(connections, 1);
    const strict = new Http1Client();
    await assert.rejects(strict.get(url, opts), NetworkError);
    strict.close();
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('against node:http: small, large, chunked and error bodies; dump keeps the connection', async () => {
  const big = crypto.randomBytes(3 << 20);
  const server = http.createServer((req, res) => {
    if (req.url === '/big') res.end(big);
    else if (req.url === '/chunked') {
      res.write('one,');
      setTimeout(() => res.end('two'), 10);
    } else {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' });
      res.end(JSON.stringify({ error: 'no such file' }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let connections = 0;
  server.on('connection', () => connections++);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new Http1Client();
  try {
    assert.ok((await readAll(await client.get(`${base}/big`, opts), 1 << 20)).equals(big));
    assert.equal((await readAll(await client.get(`${base}/chunked`, opts))).toString(), 'one,two');
    const missing = await client.get(`${base}/nope`, opts);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-error-code'], 'EntryNotFound');
    assert.equal(await missing.text(4096), '{"error":"no such file"}');
    await (await client.get(`${base}/nope`, opts)).dump();
    assert.equal(connections, 1);
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
