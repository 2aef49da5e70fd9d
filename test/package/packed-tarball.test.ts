/**
 * deltac as a user installs it: `npm pack` (which builds dist/ through `prepare`) gives a
 * tarball that installs into an empty folder with only its declared dependencies, and
 * there `npx deltac convert … --emit-kernels` and `npx deltac verify` work, the API
 * example runs against `import … from 'deltac'`, and it type-checks against the
 * package's own declarations.
 *
 * onnxruntime-node's install script downloads its CUDA provider from a remote package
 * feed, which fails offline: a consumer denies it with `allowScripts` in their own
 * package.json (npm 11) or sets ONNXRUNTIME_NODE_INSTALL=skip (any npm). Both ways install
 * here with no network access attempted: npm runs `--offline` (from its cache only), and
 * every proxy setting npm and the script read (npm's, HTTP(S)_PROXY, global-agent's, which
 * the script bootstraps) points at a local trap that counts connections — zero, while the
 * same script run without either way connects to the trap at once (the control).
 * Where npm's cache lacks what the tarball's dependencies resolve to (a fresh machine), it
 * is filled first by an install that may use the registry and runs no scripts.
 *
 * The pack runs in a staging copy of the project (package.json, tsconfig, src, bin,
 * kernels, README), so the repository's dist/ — which other tests run — is not rebuilt
 * underneath them; what lands in the tarball is decided by package.json `files` alone.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT as ROOT } from '../helpers/paths.js';
import { systemDependency } from '../helpers/system.js';

const run = promisify(execFile);

const STAGED = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src', 'bin', 'kernels'];

/** Runs a command with the environment `process.env` + `env` (an undefined value removes the variable). */
async function sh(cmd: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}) {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete full[k];
  try {
    return await run(cmd, args, { cwd, env: full, maxBuffer: 1 << 26 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** A local TCP server that takes every connection and records its first line (e.g. `CONNECT host:443`). */
async function startTrap(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const server = net.createServer((socket) => {
    let head = '';
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      if (head.includes('\n')) return;
      head += chunk.toString('latin1');
      if (head.includes('\n') || head.length > 4096) {
        seen.push(head.split(/\r?\n/)[0]!);
        socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Every proxy setting npm and onnxruntime-node's install script read, pointed at `trap`; nothing exempt. */
function offlineEnv(trap: string): Record<string, string | undefined> {
  return {
    npm_config_proxy: trap,
    npm_config_https_proxy: trap,
    npm_config_noproxy: undefined,
    HTTP_PROXY: trap,
    HTTPS_PROXY: trap,
    http_proxy: trap,
    https_proxy: trap,
    GLOBAL_AGENT_HTTP_PROXY: trap,
    GLOBAL_AGENT_HTTPS_PROXY: trap,
    NO_PROXY: undefined,
    no_proxy: undefined,
    GLOBAL_AGENT_NO_PROXY: undefined,
    ONNXRUNTIME_NODE_INSTALL: undefined,
    ONNXRUNTIME_NODE_INSTALL_CUDA: undefined,
    npm_config_onnxruntime_node_install: undefined,
  };
}

const NPM_FLAGS = ['--no-audit', '--no-fund', '--loglevel=error'];

describe('the npm package', () => {
  it('packs, installs into empty projects offline (allowScripts, ONNXRUNTIME_NODE_INSTALL=skip), and runs the CLI and the API example there', async () => {
    const { dir: tmp, cleanup } = makeTempDir('deltac-pack-');
    try {
      // 1. npm pack in a staging copy (prepare → tsc builds its dist/)
      const stage = path.join(tmp, 'stage');
      fs.mkdirSync(stage);
      for (const entry of STAGED) fs.cpSync(path.join(ROOT, entry), path.join(stage, entry), { recursive: true });
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
      const { stdout: packJson } = await sh('npm', ['pack', '--json', '--pack-destination', tmp], stage, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
      const [pack] = JSON.parse(packJson.slice(packJson.indexOf('['))) as { filename: string; files: { path: string }[] }[];
      const files = pack!.files.map((f) => f.path);
      // what a user needs, and nothing of the project's own tests, examples or sources but the runtime the host generator copies
      for (const f of ['package.json', 'README.md', 'bin/deltac.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'kernels/cuda/pyramid_conv.cuh', 'src/codegen/host/webgpu-runtime.ts']) {
        expect(files, f).toContain(f);
      }
      expect(files.filter((f) => /^(test|examples|bench|node_modules)\//.test(f) || (f.startsWith('src/') && f !== 'src/codegen/host/webgpu-runtime.ts'))).toEqual([]);

      // 2. empty projects install the tarball offline, denying onnxruntime-node's download
      //    (a) with npm 11's allowScripts in their package.json, (b) with ONNXRUNTIME_NODE_INSTALL=skip
      const tarball = path.join(tmp, pack!.filename);
      const project = (name: string, extra: object = {}) => {
        const dir = path.join(tmp, name);
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `deltac-user-${name}`, private: true, type: 'module', ...extra }));
        return dir;
      };
      const npmMajor = Number((await sh('npm', ['--version'], tmp)).stdout.split('.')[0]);
      const withAllowScripts = systemDependency({
        suite: 'test/package/packed-tarball.test.ts, installing with allowScripts (the ONNXRUNTIME_NODE_INSTALL=skip way still runs)',
        missing: npmMajor >= 11 ? null : `npm ${npmMajor} ignores allowScripts`,
        hint: 'use npm 11 (npm install -g npm@11)',
      });
      const app = withAllowScripts ? project('app', { allowScripts: { 'onnxruntime-node': false } }) : project('app');
      const ways: [string, Record<string, string | undefined>][] = [[app, withAllowScripts ? {} : { ONNXRUNTIME_NODE_INSTALL: 'skip' }]];
      if (withAllowScripts) ways.push([project('app-env'), { ONNXRUNTIME_NODE_INSTALL: 'skip' }]);
      const trap = await startTrap();
      try {
        const installOffline = (dir: string, env: Record<string, string | undefined>) =>
          sh('npm', ['install', '--offline', ...NPM_FLAGS, tarball], dir, { ...offlineEnv(trap.url), ...env });
        try {
          await installOffline(...ways[0]!);
        } catch (e) {
          if (!/ENOTCACHED/.test(String(e))) throw e;
          // npm's cache lacks something the dependencies resolve to: fill it (registry allowed, no scripts run)
          const warm = project('cache-fill');
          await sh('npm', ['install', '--prefer-offline', '--ignore-scripts', ...NPM_FLAGS, tarball], warm);
          fs.rmSync(warm, { recursive: true, force: true });
          fs.rmSync(path.join(ways[0]![0], 'node_modules'), { recursive: true, force: true });
          await installOffline(...ways[0]!);
        }
        await Promise.all(ways.slice(1).map((w) => installOffline(...w)));
        expect(trap.seen, 'connections attempted while installing').toEqual([]);
        for (const [dir] of ways) {
          expect(fs.existsSync(path.join(dir, 'node_modules', 'deltac', 'dist', 'index.js'))).toBe(true);
          // onnxruntime's CPU binaries ship in its package; its CUDA provider was never fetched
          const bin = path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
          if (process.platform === 'linux' && process.arch === 'x64') {
            expect(fs.readdirSync(bin)).toContain('onnxruntime_binding.node');
            expect(fs.readdirSync(bin).filter((f) => f.includes('cuda'))).toEqual([]);
          }
          for (const dev of ['vitest', 'tsx', 'typescript', 'webgpu', 'onnxruntime-web', 'puppeteer-core']) {
            expect(fs.existsSync(path.join(dir, 'node_modules', dev)), `${dev} is a dev dependency and must not be installed`).toBe(false);
          }
        }
        // the control: the same install script, allowed and not told to skip, goes for the network at once
        if (process.platform === 'linux' && process.arch === 'x64') {
          const script = path.join(app, 'node_modules', 'onnxruntime-node', 'script', 'install.js');
          // (run by hand, not by npm: without npm's variables saying it is the package's own install)
          const control = { ...offlineEnv(trap.url), npm_config_local_prefix: undefined, npm_package_json: undefined };
          await expect(sh(process.execPath, [script], app, control)).rejects.toThrow();
          expect(trap.seen.length, 'the control run reached the trap').toBeGreaterThan(0);
          expect(trap.seen[0]).toMatch(/^CONNECT [^ ]+:443 HTTP\/1\.1$/);
        }
      } finally {
        await trap.close();
      }
      fs.cpSync(path.join(ROOT, 'examples', 'pixart-mini'), path.join(app, 'pixart-mini'), { recursive: true });

      // 3. the CLI: convert (with kernels) and verify against PyTorch
      const convert = await sh('npx', ['--no-install', 'deltac', 'convert', 'pixart-mini/model.onnx', '--weights', 'pixart-mini/delta.safetensors', '-o', 'out/pixart.delta.onnx', '--emit-kernels', 'out/kernels'], app);
      expect(convert.stdout).toMatch(/transformer_blocks\.3/);
      const emitted = fs.readdirSync(path.join(app, 'out', 'kernels'));
      for (const f of ['deltac-kernels.ts', 'kernels.json', 'gate-weights.bin', 'deltac_kernels.h']) expect(emitted, f).toContain(f);
      const manifest = JSON.parse(fs.readFileSync(path.join(app, 'out', 'kernels', 'kernels.json'), 'utf8')) as { kernels: { cuda: string; wgsl: string }[]; layers: Record<string, string> };
      expect(Object.keys(manifest.layers)).toEqual([0, 1, 2, 3].map((i) => `transformer_blocks.${i}.attn1`));
      for (const k of manifest.kernels) expect(emitted).toEqual(expect.arrayContaining([k.cuda, k.wgsl]));
      const verify = await sh('npx', ['--no-install', 'deltac', 'verify', 'pixart-mini/model.onnx', 'out/pixart.delta.onnx', '--inputs', 'pixart-mini', '--reference', 'pixart-mini/out0.delta.npy'], app);
      // in0  out  [2,8,16,12]  <max|Δ| vs original> <rel> <max|Δ| vs reference> <rel>  ok
      const row = /^in0\s.*\s([\d.e+-]+)\s+ok$/m.exec(verify.stdout);
      expect(row, verify.stdout).not.toBeNull();
      expect(Number(row![1])).toBeLessThanOrEqual(1e-4);

      // 4. the API example, importing 'deltac' instead of ../src, as JavaScript (plain node) and type-checked
      const source = fs.readFileSync(path.join(ROOT, 'examples', 'api.ts'), 'utf8').replace("from '../src/index.js'", "from 'deltac'");
      expect(source).toContain("from 'deltac'");
      fs.writeFileSync(path.join(app, 'api.ts'), source);
      fs.writeFileSync(path.join(app, 'api.mjs'), ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
      const api = await sh(process.execPath, ['api.mjs'], app);
      expect(api.stdout).toMatch(/transformer_blocks\.0\.attn1: converted, K=5, gate=sigmoid/);
      const apiRel = Number(/in0: max\|Δ\|\/max\|ref\| = ([\d.e+-]+)/.exec(api.stdout)?.[1] ?? NaN);
      expect(apiRel, api.stdout).toBeLessThanOrEqual(1e-4);

      const program = ts.createProgram([path.join(app, 'api.ts')], {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      });
      const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
      expect(diagnostics).toEqual([]);
    } finally {
      cleanup();
    }
  }, 600_000); // ~40 s on an idle machine; a build and two or three installs, so generous under load
});
