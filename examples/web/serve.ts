/**
 * `npm run web`: builds what the page needs (build.ts) and serves it on 127.0.0.1.
 *
 *   npm run web                 http://127.0.0.1:8080/
 *   npm run web -- --port 0     any free port (printed)
 *
 * Only the files named below are served — no directory listing, no path from the URL
 * reaches the file system except a bare file name inside one of the folders. The
 * cross-origin-isolation headers let onnxruntime-web use threads (SharedArrayBuffer).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWebExample, CONVERTED, EXAMPLES, PIXART, WEB_OUT } from './build.js';

const ORT_DIST = path.join(path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-web'))), '..', 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.npy': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

/** URL path → file; `null` when the page has no such file. */
export function resolveRequest(urlPath: string): string | null {
  const fixed: Record<string, string> = {
    '/': path.join(EXAMPLES, 'web', 'index.html'),
    '/index.html': path.join(EXAMPLES, 'web', 'index.html'),
    '/main.js': path.join(WEB_OUT, 'main.js'),
    '/main.js.map': path.join(WEB_OUT, 'main.js.map'),
    '/layers.json': path.join(WEB_OUT, 'layers.json'),
    '/block-reference.bin': path.join(WEB_OUT, 'block-reference.bin'),
    '/models/original.onnx': path.join(PIXART, 'model.onnx'),
    '/models/converted.onnx': CONVERTED,
  };
  if (fixed[urlPath]) return fixed[urlPath];
  const m = /^\/(ort|kernels|data)\/([A-Za-z0-9_][A-Za-z0-9_.-]*)$/.exec(urlPath);
  if (!m) return null;
  const [, folder, name] = m;
  if (folder === 'data' && !name!.endsWith('.npy')) return null;
  const dir = folder === 'ort' ? ORT_DIST : folder === 'kernels' ? path.join(WEB_OUT, 'kernels') : PIXART;
  return path.join(dir, name!);
}

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

/** Builds the page's assets and starts the server (port 0: any free port). */
export async function startWebServer(port = 8080, log: (line: string) => void = () => {}): Promise<WebServer> {
  await buildWebExample(log);
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file = req.method === 'GET' || req.method === 'HEAD' ? resolveRequest(urlPath) : null;
    fs.readFile(file ?? '', (err, body) => {
      if (!file || err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`web: --port must be a port number (0 for any free one), got ${process.argv[i + 1]}`);
    process.exit(1);
  }
  const server = await startWebServer(port, (line) => console.log(`web: ${line}`)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE') throw err;
    console.error(`web: port ${port} on 127.0.0.1 is in use; pass --port with another one (0 picks a free one)`);
    process.exit(1);
  });
  console.log(`web: serving the pixart-mini page on ${server.url} (Ctrl-C stops)`);
}
