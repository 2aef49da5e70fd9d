/**
 * `npm run web -- --pipeline DIR [--weights ckpt | --compare DIR2]` (examples/web/serve.ts,
 * pipeline-serving.ts): the server hands the preview page a pipeline folder read-only —
 * only the regular files listed when it started whose real path lies inside the folder:
 * a link out of the folder is not served (and named in the log), nor a file that became
 * one after the start, nor anything outside the listing, whatever the URL; nothing is
 * written to the folder. With --weights the folder is converted once by `deltac convert`.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertedFolderFor, preparePipelines } from '../../examples/web/pipeline-serving.js';
import { startWebServer, type WebServer } from '../../examples/web/serve.js';
import { makeTempDir, REPO_ROOT } from '../helpers/paths.js';
import { SD_TINY, copyPipeline } from '../helpers/pipeline-variants.js';

const tmp = makeTempDir('deltac-web-serve-pipeline-');
const folder = path.join(tmp.dir, 'tiny');
let server: WebServer;
const log: string[] = [];

/** Status of a raw request line, not normalized by a client. */
function rawStatus(p: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = method === 'GET' || method === 'HEAD' ? undefined : 'x';
    const headers = body ? { 'content-length': body.length } : {};
    const req = http.request({ host: '127.0.0.1', port: new URL(server.url).port, path: p, method, headers }, (res) => resolve(res.resume().statusCode!));
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  copyPipeline(SD_TINY, folder);
  fs.writeFileSync(path.join(tmp.dir, 'secret.txt'), 'not for the page');
  fs.mkdirSync(path.join(tmp.dir, 'elsewhere'));
  fs.writeFileSync(path.join(tmp.dir, 'elsewhere', 'x.json'), '{}');
  fs.symlinkSync('../secret.txt', path.join(folder, 'leak.txt')); // a link out of the folder
  fs.symlinkSync('../elsewhere', path.join(folder, 'outside')); // a linked folder outside it
  fs.symlinkSync('../model_index.json', path.join(folder, 'unet', 'alias.json')); // a link that stays inside
  fs.writeFileSync(path.join(folder, 'later.txt'), 'listed at the start');
  server = await startWebServer(0, (line) => log.push(line), { pipeline: { pipeline: folder } });
}, 120_000);
afterAll(async () => {
  await server?.close();
  tmp.cleanup();
});

describe('npm run web -- --pipeline', () => {
  it('lists the folder\'s files for the page, without the links that lead out of it, and says which it left out', async () => {
    const index = (await (await fetch(new URL('/pipeline/index.json', server.url))).json()) as { folders: { slot: string; role: string; label: string; files: Record<string, number> }[]; sameParts: boolean };
    expect(index.folders.map((f) => [f.slot, f.role, f.label])).toEqual([['main', 'original', 'tiny']]);
    const files = index.folders[0]!.files;
    expect(files['unet/model.onnx']).toBe(fs.statSync(path.join(SD_TINY, 'unet', 'model.onnx')).size);
    expect(files['unet/alias.json']).toBeGreaterThan(0);
    expect(Object.keys(files).filter((f) => /leak|outside|secret/.test(f))).toEqual([]);
    expect(log.filter((l) => l.startsWith('not served'))).toEqual([
      expect.stringMatching(/leak\.txt \(a link to .*secret\.txt, outside the folder\)/),
      expect.stringMatching(/outside\/x\.json \(a link to .*elsewhere\/x\.json, outside the folder\)/),
    ]);
  });

  it('serves the listed files with their bytes (streamed, with their length); HEAD too', async () => {
    const unet = await fetch(new URL('/pipeline/main/unet/model.onnx', server.url));
    expect(unet.status).toBe(200);
    expect(unet.headers.get('content-type')).toBe('application/octet-stream');
    expect(unet.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    const bytes = Buffer.from(await unet.arrayBuffer());
    expect(bytes.equals(fs.readFileSync(path.join(SD_TINY, 'unet', 'model.onnx')))).toBe(true);
    expect(await (await fetch(new URL('/pipeline/main/unet/alias.json', server.url))).text()).toBe(fs.readFileSync(path.join(SD_TINY, 'model_index.json'), 'utf8'));
    const head = await fetch(new URL('/pipeline/main/generation.json', server.url), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(fs.statSync(path.join(SD_TINY, 'generation.json')).size);
  });

  it('answers 404 for links out, unlisted paths, traversal, a second folder it does not have, and any write', async () => {
    for (const p of [
      '/pipeline/main/leak.txt',
      '/pipeline/main/outside/x.json',
      '/pipeline/main/secret.txt',
      '/pipeline/main/unet',
      '/pipeline/main/',
      '/pipeline/main/%2e%2e/secret.txt',
      '/pipeline/main/..%2fsecret.txt',
      '/pipeline/main/unet/..%2F..%2Fsecret.txt',
      '/pipeline/main/%E0%A4%A',
      '/pipeline/compare/model_index.json',
      '/pipeline/tiny/model_index.json',
      '/pipeline/main//model_index.json',
    ]) {
      expect((await fetch(new URL(p, server.url))).status, p).toBe(404);
    }
    for (const raw of ['/pipeline/main/../secret.txt', '/pipeline/main/../../secret.txt', '/pipeline/main/unet/../../secret.txt']) expect(await rawStatus(raw), raw).toBe(404);
    const before = fs.readFileSync(path.join(folder, 'model_index.json'));
    for (const method of ['PUT', 'POST', 'DELETE', 'PATCH']) expect(await rawStatus('/pipeline/main/model_index.json', method), method).toBe(404);
    expect(fs.readFileSync(path.join(folder, 'model_index.json')).equals(before)).toBe(true);
  });

  it('checks a file again when it is read: a listed file replaced by a link out of the folder is not served', async () => {
    expect((await fetch(new URL('/pipeline/main/later.txt', server.url))).status).toBe(200);
    fs.rmSync(path.join(folder, 'later.txt'));
    fs.symlinkSync('../secret.txt', path.join(folder, 'later.txt'));
    expect((await fetch(new URL('/pipeline/main/later.txt', server.url))).status).toBe(404);
  });

  it('with --weights, converts the folder once (deltac convert) and serves the converted twin; all other files the same bytes', async () => {
    const copy = copyPipeline(SD_TINY, path.join(tmp.dir, 'copy'));
    const weights = path.join(copy, 'delta.safetensors');
    const out = convertedFolderFor(copy, weights);
    try {
      const lines: string[] = [];
      const served = await preparePipelines({ pipeline: copy, weights }, (l) => lines.push(l));
      expect(served.folders.map((f) => [f.slot, f.role, f.root])).toEqual([
        ['main', 'original', fs.realpathSync(copy)],
        ['compare', 'delta', fs.realpathSync(out)],
      ]);
      expect(served.sameParts).toBe(true);
      expect(lines.join('\n')).toMatch(/converted 4 self-attention layer\(s\).*smoke check passed/);
      const again: string[] = [];
      await preparePipelines({ pipeline: copy, weights }, (l) => again.push(l));
      expect(again.filter((l) => l.startsWith('converting'))).toEqual([]); // up to date: not converted again
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses bad command lines and folders before serving, with the error code', async () => {
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/web/serve.ts', '--port', '0', ...args], { cwd: REPO_ROOT, timeout: 60_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    const [noPipeline, missing, notPipeline] = await Promise.all([
      run('--weights', path.join(SD_TINY, 'delta.safetensors')),
      run('--pipeline', path.join(tmp.dir, 'nope')),
      run('--pipeline', path.join(tmp.dir, 'elsewhere')),
    ]);
    expect(noPipeline).toEqual({ code: 1, stderr: 'web: --weights and --compare go with --pipeline DIR (the folder to preview)\n' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^web: error DELTAC_E_FILE_NOT_FOUND: pipeline folder ".*nope" does not exist\n$/);
    expect(notPipeline.code).toBe(1);
    expect(notPipeline.stderr).toMatch(/^web: error DELTAC_E_PIPELINE_FOLDER: .*elsewhere" is a folder without model_index\.json/);
    await expect(preparePipelines({ pipeline: folder, weights: 'w.safetensors', compare: folder })).rejects.toMatchObject({ code: 'DELTAC_E_BAD_OPTION' });
    await expect(preparePipelines({ pipeline: folder, weights: path.join(tmp.dir, 'none.safetensors') })).rejects.toMatchObject({ code: 'DELTAC_E_FILE_NOT_FOUND' });
    // a folder whose UNet is a link out of it (as in a Hugging Face cache snapshot): refused before serving, saying why
    const linked = path.join(tmp.dir, 'linked');
    fs.mkdirSync(path.join(linked, 'unet'), { recursive: true });
    fs.copyFileSync(path.join(SD_TINY, 'model_index.json'), path.join(linked, 'model_index.json'));
    fs.symlinkSync(path.join(SD_TINY, 'unet', 'model.onnx'), path.join(linked, 'unet', 'model.onnx'));
    await expect(preparePipelines({ pipeline: linked })).rejects.toMatchObject({
      code: 'DELTAC_E_PIPELINE_FOLDER',
      message: expect.stringMatching(/linked": unet\/model\.onnx is a link out of the folder, which the server does not serve; copy the folder with its links resolved \(cp -rL\)/),
    });
  }, 120_000);
});

describe('npm run web without --pipeline', () => {
  it('has no pipeline to offer: the preview page falls back to its folder picker', async () => {
    const plain = await startWebServer(0);
    try {
      expect((await fetch(new URL('/pipeline/index.json', plain.url))).status).toBe(404);
      expect((await fetch(new URL('/pipeline/main/model_index.json', plain.url))).status).toBe(404);
      const page = await fetch(new URL('/preview.html', plain.url));
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('webkitdirectory');
      expect((await fetch(new URL('/preview.js', plain.url))).status).toBe(200);
    } finally {
      await plain.close();
    }
  });
});
