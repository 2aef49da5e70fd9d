/**
 * deltac as a user installs it: `npm pack` (which builds dist/ through `prepare`) gives a
 * tarball that installs into an empty folder with only its declared dependencies, and
 * there `npx deltac convert … --emit-kernels` and `npx deltac verify` work, the API
 * example runs against `import … from 'deltac'`, and it type-checks against the
 * package's own declarations.
 *
 * The pack runs in a staging copy of the project (package.json, tsconfig, src, bin,
 * kernels, README), so the repository's dist/ — which other tests run — is not rebuilt
 * underneath them; what lands in the tarball is decided by package.json `files` alone.
 * Dependencies come through npm's configured registry and its cache (--prefer-offline);
 * onnxruntime-node's install script is told to skip its CUDA download.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT as ROOT } from '../helpers/paths.js';

const run = promisify(execFile);

const STAGED = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src', 'bin', 'kernels'];

async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  try {
    return await run(cmd, args, { cwd, env: { ...process.env, ...env, ONNXRUNTIME_NODE_INSTALL: 'skip' }, maxBuffer: 1 << 26 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

describe('the npm package', () => {
  it('packs, installs into an empty folder, and runs the CLI and the API example there', async () => {
    const { dir: tmp, cleanup } = makeTempDir('deltac-pack-');
    try {
      // 1. npm pack in a staging copy (prepare → tsc builds its dist/)
      const stage = path.join(tmp, 'stage');
      fs.mkdirSync(stage);
      for (const entry of STAGED) fs.cpSync(path.join(ROOT, entry), path.join(stage, entry), { recursive: true });
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
      const { stdout: packJson } = await sh('npm', ['pack', '--json', '--pack-destination', tmp], stage);
      const [pack] = JSON.parse(packJson.slice(packJson.indexOf('['))) as { filename: string; files: { path: string }[] }[];
      const files = pack!.files.map((f) => f.path);
      // what a user needs, and nothing of the project's own tests, examples or sources but the runtime the host generator copies
      for (const f of ['package.json', 'README.md', 'bin/deltac.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'kernels/cuda/pyramid_conv.cuh', 'src/codegen/host/webgpu-runtime.ts']) {
        expect(files, f).toContain(f);
      }
      expect(files.filter((f) => /^(test|examples|bench|node_modules)\//.test(f) || (f.startsWith('src/') && f !== 'src/codegen/host/webgpu-runtime.ts'))).toEqual([]);

      // 2. an empty project installs the tarball (dependencies only: no dev dependencies)
      const app = path.join(tmp, 'app');
      fs.mkdirSync(app);
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'deltac-user', private: true, type: 'module' }));
      await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(tmp, pack!.filename)], app);
      for (const dev of ['vitest', 'tsx', 'typescript', 'webgpu', 'onnxruntime-web', 'puppeteer-core']) {
        expect(fs.existsSync(path.join(app, 'node_modules', dev)), `${dev} is a dev dependency and must not be installed`).toBe(false);
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
  }, 300_000); // ~20 s on an idle machine; a build and an install, so generous under load
});
