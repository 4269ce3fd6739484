// A CONNECT tunnel through an HTTP proxy, for https requests (the proxy sees only the host).
import net from 'node:net';
import { AbortedError, asNetworkError, NetworkError, UnauthorizedError } from '../errors.js';
import { malformed, parseHead } from './head.js';
import { bareHost, type ProxyRoute } from './proxy.js';

/** Opens a CONNECT tunnel through `proxy` to `authority` (host:port); resolves with the socket. */
export function openTunnel(
  proxy: ProxyRoute,
  authority: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<net.Socket> {
  const where = proxy.url.host;
  const socket = net.connect({ host: bareHost(proxy.url.hostname), port: Number(proxy.url.port || 80) });
  return new Promise<net.Socket>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onAbort = (): void => done(AbortedError.from(signal));
    const onError = (err: Error): void => done(asNetworkError(err));
    const onClose = (): void => done(new NetworkError(`proxy ${where} closed the connection`));
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      try {
        const answer = parseHead(head, head.length);
        if (!answer) {
          if (head.length > 64 * 1024) done(malformed(`proxy ${where} sent an endless answer`));
          return;
        }
        socket.pause();
        if (answer.status >= 200 && answer.status < 300 && answer.length === head.length) done();
        else if (answer.status === 407) {
          done(
            new UnauthorizedError(`proxy ${where} asks for credentials (HTTP 407)`, 407, undefined, {
              hint: 'Put them in the proxy URL: HTTPS_PROXY=http://user:password@host:port',
            }),
          );
        } else done(new NetworkError(`proxy ${where} refused the tunnel to ${authority}: HTTP ${answer.status}`));
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const timer = setTimeout(
      () => done(new NetworkError(`proxy ${where} did not answer within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', () => {
      const auth = proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : '';
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
  });
}
