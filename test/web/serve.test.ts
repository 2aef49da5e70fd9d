/**
 * The page's static server (`npm run web`, examples/web/serve.ts): 127.0.0.1 only, the
 * page's files and onnxruntime-web's wasm with the right types and cross-origin-isolation
 * headers, and nothing else — no path from the URL leaves the served folders.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebServer, type WebServer } from '../../examples/web/serve.js';

let server: WebServer;
beforeAll(async () => {
  server = await startWebServer(0);
});
afterAll(() => server?.close());

const get = (p: string, init?: RequestInit) => fetch(new URL(p, server.url), init);

describe('npm run web server', () => {
  it('listens on 127.0.0.1 and serves the page, its bundle, models, data, kernels and onnxruntime-web', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(await page.text()).toContain('"onnxruntime-web": "/ort/ort.min.mjs"');
    for (const [p, type] of [
      ['/main.js', 'text/javascript'],
      ['/ort/ort.min.mjs', 'text/javascript'],
      ['/ort/ort-wasm-simd-threaded.asyncify.wasm', 'application/wasm'],
      ['/ort/ort-wasm-simd-threaded.asyncify.mjs', 'text/javascript'],
      ['/models/original.onnx', 'application/octet-stream'],
      ['/models/converted.onnx', 'application/octet-stream'],
      ['/data/in0.hidden_states.npy', 'application/octet-stream'],
      ['/kernels/deltac-kernels.js', 'text/javascript'],
      ['/kernels/gate-weights.bin', 'application/octet-stream'],
      ['/kernels/block-weights.bin', 'application/octet-stream'],
      ['/block-reference.bin', 'application/octet-stream'],
      ['/layers.json', 'application/json'],
    ] as const) {
      const r = await get(p);
      expect(r.status, p).toBe(200);
      expect(r.headers.get('content-type'), p).toContain(type);
      expect((await r.arrayBuffer()).byteLength, p).toBeGreaterThan(0);
    }
    const layers = (await (await get('/layers.json')).json()) as { name: string; height: number; width: number }[];
    expect(layers.map((l) => `${l.name} ${l.height}×${l.width}`)).toEqual([0, 1, 2, 3].map((i) => `transformer_blocks.${i}.attn1 8×6`));
  });

  it('answers 404 for anything else: traversal, encoded slashes, other files, other methods', async () => {
    for (const p of ['/package.json', '/ort/../package.json', '/data/%2e%2e%2fmodel.onnx', '/data/..%2f..%2fpackage.json', '/kernels/.gitignore', '/data/model.onnx', '/ort/', '/src/index.ts', '/examples/web/serve.ts']) {
      expect((await get(p)).status, p).toBe(404);
    }
    expect((await get('/', { method: 'POST', body: 'x' })).status).toBe(404);
    // a raw request line, not normalized by a client
    for (const raw of ['/ort/../../package.json', '/data/../../../package.json', '//etc/passwd']) {
      const status = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: new URL(server.url).port, path: raw }, (res) => resolve(res.resume().statusCode!)).on('error', reject);
      });
      expect(status, raw).toBe(404);
    }
  });
});
