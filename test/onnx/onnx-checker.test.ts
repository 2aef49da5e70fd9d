/**
 * deltac's output against onnx's own checker (full_check: the strict shape inference too,
 * which infers through local functions): the `--emit fused` models of sd15-mini and
 * pixart-mini with their PyramidConvBlock functions, the `--emit standard` ones, and a
 * model with functions of another producer after deltac's load → save. Skips loudly
 * without Python's onnx ≥ 1.16 (test/helpers/onnx-checker.ts).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { findOnnxChecker } from '../helpers/onnx-checker.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';

const checker = findOnnxChecker('test/onnx/onnx-checker.test.ts (onnx\'s checker on --emit fused output)');
const run = promisify(execFile);
const tmp = makeTempDir('deltac-onnx-checker-');
afterAll(tmp.cleanup);

const CHECK = `
import sys, onnx
for f in sys.argv[1:]:
    try:
        m = onnx.load(f)
        onnx.checker.check_model(m, full_check=True)
        print("ok", f, m.ir_version, len(m.functions))
    except Exception as e:
        print("refused", f, str(e).replace("\\n", " ")[:300])
`;

async function check(files: string[]): Promise<Map<string, string>> {
  const { stdout } = await run(checker!.python, ['-c', CHECK, ...files], { env: checker!.env, maxBuffer: 1 << 24 });
  return new Map(stdout.trim().split('\n').map((line) => {
    const [verdict, file, ...rest] = line.split(' ');
    return [file!, `${verdict} ${rest.join(' ')}`];
  }));
}

describe.skipIf(!checker)('onnx checker', () => {
  it('accepts the --emit fused and --emit standard models of sd15-mini and pixart-mini, and a model with functions deltac re-saved', async () => {
    const files: string[] = [];
    for (const name of ['sd15-mini', 'pixart-mini']) {
      for (const emit of ['fused', 'standard'] as const) {
        const m = loadModel(path.join(MODELS_DIR, name, 'model.onnx'));
        convert(m, { weights: path.join(MODELS_DIR, name, 'delta.safetensors'), emit });
        const file = path.join(tmp.dir, `${name}.${emit}.onnx`);
        saveModel(m, file);
        files.push(file);
      }
    }
    const resaved = path.join(tmp.dir, 'functions.resaved.onnx');
    saveModel(loadModel(path.resolve(import.meta.dirname, '../fixtures/functions/functions.onnx')), resaved);
    files.push(resaved);
    // a control the checker must refuse: a function body with an operator that does not exist
    const broken = loadModel(files[0]!);
    broken.functions[0]!.body.nodes[0]!.opType = 'NoSuchOp';
    const brokenFile = path.join(tmp.dir, 'broken.onnx');
    saveModel(broken, brokenFile);

    const verdicts = await check([...files, brokenFile]);
    expect(verdicts.get(files[0]!)).toBe('ok 10 3'); // sd15-mini fused: IR 10, three configurations
    expect(verdicts.get(files[1]!)).toBe('ok 8 0');
    expect(verdicts.get(files[2]!)).toBe('ok 10 1'); // pixart-mini fused
    expect(verdicts.get(files[3]!)).toBe('ok 8 0');
    expect(verdicts.get(resaved)).toBe('ok 10 4');
    expect(verdicts.get(brokenFile)).toMatch(/^refused .*NoSuchOp/);
  }, 240_000);
});
