/**
 * `npm run web`: builds what the page needs (build.ts) and serves it on 127.0.0.1.
 *
 *   npm run web                 http://127.0.0.1:8080/ (pixart-mini), …/preview.html (a picked pipeline folder)
 *   npm run web -- --port 0     any free port (printed)
 *   npm run web -- --pipeline DIR [--weights ckpt.safetensors | --compare CONVERTED_DIR]
 *                               also serves a pipeline folder (and its converted twin) to preview.html
 *
 * Only the files named below are served — no directory listing, no path from the URL
 * reaches the file system except a bare file name inside one of the folders, or a path
 * that the pipeline folder's listing holds (pipeline-serving.ts). Read-only: GET and HEAD.
 * The cross-origin-isolation headers let onnxruntime-web use threads (SharedArrayBuffer).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isDeltacError } from '../../src/ir/errors.js';
import { buildWebExample, CONVERTED, EXAMPLES, PIXART, WEB_OUT } from './build.js';
import { type PipelineRequest, type ServedPipelines, pipelineIndex, preparePipelines, servedFile } from './pipeline-serving.js';

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
    '/preview.html': path.join(EXAMPLES, 'web', 'preview.html'),
    '/preview.js': path.join(WEB_OUT, 'preview.js'),
    '/preview.js.map': path.join(WEB_OUT, 'preview.js.map'),
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

export interface WebServerOptions {
  /** A pipeline folder (and how to get its converted twin) to serve to preview.html. */
  pipeline?: PipelineRequest;
}

const HEADERS = {
  'cache-control': 'no-cache',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/** /pipeline/index.json, /pipeline/<main|compare>/<path in the folder>: the served folder's file, or null. */
function pipelineRequest(urlPath: string, served: ServedPipelines | undefined): { file: string } | { json: unknown } | null {
  if (!served) return null;
  if (urlPath === '/pipeline/index.json') return { json: pipelineIndex(served) };
  const m = /^\/pipeline\/(main|compare)\/(.+)$/.exec(urlPath);
  const folder = m && served.folders.find((f) => f.slot === m[1]);
  if (!folder) return null;
  let rel: string;
  try {
    rel = m[2]!.split('/').map(decodeURIComponent).join('/');
  } catch {
    return null;
  }
  const file = servedFile(folder, rel);
  return file ? { file } : null;
}

/** Builds the page's assets, prepares the pipeline folder if one is given, and starts the server (port 0: any free port). */
export async function startWebServer(port = 8080, log: (line: string) => void = () => {}, options: WebServerOptions = {}): Promise<WebServer & { pipelines?: ServedPipelines }> {
  const pipelines = options.pipeline ? await preparePipelines(options.pipeline, log) : undefined; // a bad folder fails before the build
  await buildWebExample(log);
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://localhost').pathname;
    const readOnly = req.method === 'GET' || req.method === 'HEAD';
    const notFound = () => res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    const fromPipeline = readOnly ? pipelineRequest(urlPath, pipelines) : null;
    if (fromPipeline && 'json' in fromPipeline) {
      res.writeHead(200, { 'content-type': TYPES['.json']!, ...HEADERS });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(fromPipeline.json));
      return;
    }
    if (fromPipeline) {
      // streamed: a UNet's weights may be gigabytes
      fs.stat(fromPipeline.file, (err, st) => {
        if (err) return notFound();
        res.writeHead(200, { 'content-type': TYPES[path.extname(fromPipeline.file)] ?? 'application/octet-stream', 'content-length': st.size, ...HEADERS });
        if (req.method === 'HEAD') return res.end();
        fs.createReadStream(fromPipeline.file).on('error', () => res.destroy()).pipe(res);
      });
      return;
    }
    const file = readOnly ? resolveRequest(urlPath) : null;
    fs.readFile(file ?? '', (err, body) => {
      if (!file || err) return notFound();
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', ...HEADERS });
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
    ...(pipelines ? { pipelines } : {}),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const fail = (message: string): never => {
    console.error(`web: ${message}`);
    process.exit(1);
  };
  let values: { port?: string; pipeline?: string; weights?: string; compare?: string };
  try {
    ({ values } = parseArgs({ options: { port: { type: 'string' }, pipeline: { type: 'string' }, weights: { type: 'string' }, compare: { type: 'string' } } }));
  } catch (e) {
    fail(`${(e as Error).message}. Usage: npm run web -- [--port N] [--pipeline DIR [--weights ckpt.safetensors | --compare CONVERTED_DIR]]`);
  }
  const port = values!.port === undefined ? 8080 : Number(values!.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number (0 for any free one), got ${values!.port}`);
  if ((values!.weights || values!.compare) && !values!.pipeline) fail('--weights and --compare go with --pipeline DIR (the folder to preview)');
  const pipeline = values!.pipeline ? { pipeline: values!.pipeline, weights: values!.weights, compare: values!.compare } : undefined;
  const server = await startWebServer(port, (line) => console.log(`web: ${line}`), { pipeline }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') fail(`port ${port} on 127.0.0.1 is in use; pass --port with another one (0 picks a free one)`);
    if (isDeltacError(err)) fail(`error ${err.code}: ${err.message}`);
    throw err;
  });
  console.log(`web: serving the pixart-mini page on ${server.url} and the pipeline preview on ${server.url}preview.html (Ctrl-C stops)`);
  for (const f of server.pipelines?.folders ?? []) console.log(`web: preview.html opens ${path.relative(process.cwd(), path.resolve(f.label)) || '.'} (${f.role === 'delta' ? 'converted UNet' : 'original UNet'}, ${f.files.size} files)`);
}
