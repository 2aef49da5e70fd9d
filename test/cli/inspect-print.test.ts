/** `deltac inspect` and `deltac print` through main(argv, io), and the CLI's exit codes. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index.js';
import type { ModelSummary } from '../../src/cli/commands/inspect.js';
import type { Command } from '../../src/cli/main.js';
import { parseModel } from '../../src/ir/text/build.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';

const cli = runCli;

const SD15_FULL = modelPath('sd15-full', 'model.graph.onnx');
const SD15_MINI = modelPath('sd15-mini');
const tmp = makeTempDir('deltac-cli-');
afterAll(tmp.cleanup);

describe('deltac inspect', () => {
  it('inspects sd15-full without its external files: reports them missing, shows symbolic inputs', async () => {
    const r = await cli('inspect', SD15_FULL);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^sample\s+f32\[batch,4,height,width\]$/m);
    expect(r.out).toMatch(/^timestep\s+f32\[batch\]$/m);
    expect(r.out).toMatch(/^encoder_hidden_states\s+f32\[batch,seq,768\]$/m);
    expect(r.out).toMatch(/^out_sample\s+f32\[batch,4,height,width\]$/m);
    expect(r.out).toMatch(/^opsets\s+ai\.onnx 17$/m);
    expect(r.out).toMatch(/^nodes\s+4493$/m);
    expect(r.out).toMatch(/^Softmax\s+32$/m);
    expect(r.out).toContain('external   384 tensors, 3.20 GiB in 384 file(s)');
    expect(r.out).toMatch(/MISSING\s+384 external data file\(s\): m\.conv_in\.weight, .*\(379 more\)/);
  });

  it('--json gives the summary as data', async () => {
    const r = await cli('inspect', SD15_FULL, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as ModelSummary;
    expect(s.irVersion).toBe(8);
    expect(s.opsets).toEqual({ 'ai.onnx': 17 });
    expect(s.inputs).toEqual([
      { name: 'sample', type: 'f32[batch,4,height,width]' },
      { name: 'timestep', type: 'f32[batch]' },
      { name: 'encoder_hidden_states', type: 'f32[batch,seq,768]' },
    ]);
    expect(s.outputs).toEqual([{ name: 'out_sample', type: 'f32[batch,4,height,width]' }]);
    expect(s.nodes).toBe(4493);
    expect(Object.values(s.ops).reduce((a, b) => a + b, 0)).toBe(4493);
    expect(s.ops.Softmax).toBe(32);
    expect(s.initializers.count).toBe(486);
    expect(s.initializers.external).toMatchObject({ count: 384, bytes: 3437163520, files: 384 });
    expect(s.initializers.external.missingFiles.length).toBe(384);
    expect(s.initializers.external.missingFiles).toContain('m.conv_in.weight');
    expect(s.initializers.inline.count + s.initializers.external.count).toBe(s.initializers.count);
    expect(s.initializers.dtypes).toEqual({ f32: 486 });
  });

  it('inspects a model with inline weights and nothing missing', async () => {
    const r = await cli('inspect', SD15_MINI, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as ModelSummary;
    expect(s.nodes).toBe(4498);
    expect(s.initializers.external).toEqual({ count: 0, bytes: 0, files: 0, missingFiles: [] });
    expect(s.initializers.inline.count).toBe(478);
    expect((await cli('inspect', SD15_MINI)).out).not.toContain('MISSING');
  });

  it('counts nodes inside subgraphs in the histogram', async () => {
    const file = path.join(tmp.dir, 'if.onnx');
    const { saveModel } = await import('../../src/onnx/save.js');
    saveModel(
      parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
        %y = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
          %t1 = Neg(%x)
        }, else_branch = graph @e() -> (%e1: f32[2]) {
          %e1 = Neg(%x)
        }}
      }`),
      file,
    );
    const s = JSON.parse((await cli('inspect', file, '--json')).out) as ModelSummary;
    expect(s.ops).toEqual({ Neg: 2, If: 1 });
    expect(s.nodes).toBe(3);
  });
});

describe('deltac print', () => {
  it('prints textual IR that parses back', async () => {
    const r = await cli('print', modelPath('pixart-mini'));
    expect(r.code).toBe(0);
    expect(r.out.startsWith('model {ir_version = 8, opset_import = {"" = 17}')).toBe(true);
    expect(r.out).toContain('graph @main_graph(%hidden_states: f32[batch,4,16,12]');
    expect(parseModel(r.out).graph.nodes.length).toBe(1090);
  });

  it('--filter keeps only matching top-level nodes', async () => {
    const r = await cli('print', SD15_MINI, '--filter', 'attn1/to_q,attn1/to_k');
    expect(r.code).toBe(0);
    const nodeLines = r.out.split('\n').filter((l) => /^ {2}%/.test(l));
    expect(nodeLines.length).toBeGreaterThan(0);
    for (const l of nodeLines) expect(l).toMatch(/attn1\/to_[qk]/);
    expect(nodeLines.some((l) => l.includes('attn1/to_q'))).toBe(true);
    expect(nodeLines.some((l) => l.includes('attn1/to_k'))).toBe(true);
    expect(nodeLines.some((l) => l.includes('attn2'))).toBe(false);
    // the filtered region is a graph of its own that parses back
    const region = parseModel(r.out);
    expect(region.graph.nodes.length).toBe(nodeLines.length);
  });

  it('works on sd15-full without its external files, printing external locations', async () => {
    const r = await cli('print', SD15_FULL, '--filter', 'conv_in');
    expect(r.code).toBe(0);
    expect(r.out).toContain('@m.conv_in.weight: f32[320,4,3,3] = tensor<f32[320,4,3,3]> external("m.conv_in.weight", 0, 46080)');
  });

  it('--shapes adds inferred types', async () => {
    const plain = await cli('print', SD15_MINI, '--filter', 'down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul');
    const shaped = await cli('print', SD15_MINI, '--shapes', '--filter', 'down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul');
    expect(plain.code).toBe(0);
    expect(shaped.code).toBe(0);
    const line = (t: string) => t.split('\n').find((l) => l.startsWith('  %') && l.includes('loc("/m/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul")'))!;
    expect(line(plain.out)).not.toMatch(/ : f32\[/);
    expect(line(shaped.out)).toMatch(/ : f32\[[^,\]]*,"height\*width",32\] loc/);
  });

  it('rejects a bad --max-inline', async () => {
    const r = await cli('print', SD15_MINI, '--max-inline', '-3');
    expect(r.code).toBe(1);
    expect(r.err).toContain('DELTAC_E_BAD_OPTION');
  });
});

describe('exit codes and errors', () => {
  it('a missing model file: exit 1, the code on stderr, no stack trace', async () => {
    const r = await cli('inspect', path.join(tmp.dir, 'nope.onnx'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^deltac inspect: DELTAC_E_FILE_NOT_FOUND: model file ".*nope\.onnx" does not exist$/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('--debug adds the stack trace', async () => {
    const r = await cli('inspect', path.join(tmp.dir, 'nope.onnx'), '--debug');
    expect(r.code).toBe(1);
    expect(r.err).toContain('DELTAC_E_FILE_NOT_FOUND');
    expect(r.err).toMatch(/\n\s+at loadModelWithReport/);
  });

  it('a file that is not ONNX: exit 1 with DELTAC_E_NOT_ONNX', async () => {
    const file = path.join(tmp.dir, 'text.onnx');
    fs.writeFileSync(file, 'hello');
    const r = await cli('print', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_NOT_ONNX/);
  });

  it('an unknown command: exit 1 with DELTAC_E_BAD_OPTION and the usage', async () => {
    const r = await cli('inspekt', SD15_MINI);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^deltac: DELTAC_E_BAD_OPTION: unknown command "inspekt"/);
    expect(r.err).toContain('Usage: deltac <command>');
  });

  it('an unknown option or a missing argument: exit 1 with DELTAC_E_BAD_OPTION', async () => {
    const unknown = await cli('inspect', SD15_MINI, '--jsno');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/DELTAC_E_BAD_OPTION: .*--jsno/);
    const missing = await cli('inspect');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/DELTAC_E_BAD_OPTION: missing model path/);
  });

  it('--help and --version exit 0; no arguments prints the usage and exits 1', async () => {
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/inspect\s+show opsets/);
    const commandHelp = await cli('print', '--help');
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.out).toContain('Usage: deltac print <model.onnx>');
    expect((await cli('--version')).out).toMatch(/^deltac \d+\.\d+\.\d+$/);
    const none = await cli();
    expect(none.code).toBe(1);
    expect(none.out).toContain('Usage: deltac <command>');
  });

  it('an internal error: exit 2, a bug report hint, the stack only with --debug', async () => {
    const boom: Command = {
      name: 'boom-test',
      summary: 'throws a TypeError',
      usage: 'deltac boom-test',
      options: {},
      run() {
        throw new TypeError('undefined is not a function');
      },
    };
    COMMANDS.push(boom);
    try {
      const r = await cli('boom-test');
      expect(r.code).toBe(2);
      expect(r.err).toContain('deltac boom-test: internal error: undefined is not a function');
      expect(r.err).toContain('--debug');
      expect(r.err).not.toMatch(/\n\s+at /);
      const d = await cli('boom-test', '--debug');
      expect(d.code).toBe(2);
      expect(d.err).toMatch(/TypeError: undefined is not a function\n\s+at /);
    } finally {
      COMMANDS.splice(COMMANDS.indexOf(boom), 1);
    }
  });
});

describe('local functions in inspect and print', () => {
  const FUNCTIONS = path.resolve(import.meta.dirname, '../fixtures/functions/functions.onnx');

  it('inspect lists each function with the nodes that call it, in the main graph and in other functions', async () => {
    const r = await cli('inspect', FUNCTIONS, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as ModelSummary;
    expect(s.functions.map((f) => [`${f.domain}.${f.name}${f.overload ? `:${f.overload}` : ''}`, f.nodes, f.calledBy])).toEqual([
      ['pkg.fn.ScaleAdd', 3, ['h']],
      ['pkg.fn.Twice', 1, ['z', 'pkg.fn.Twice:v2/t']],
      ['pkg.fn.Twice:v2', 2, ['y']],
      ['pkg.fn.Pick', 5, ['s']],
    ]);
    expect(s.functions[0]).toMatchObject({ inputs: ['a', 'b'], outputs: ['c'], attributes: ['beta', 'alpha'], opsets: { 'ai.onnx': 18 } });
    const text = await cli('inspect', FUNCTIONS);
    expect(text.out).toMatch(/^functions {4}4 local/m);
    expect(text.out).toMatch(/^pkg\.fn\.Twice\s+1\s+1\s+2\s+z, pkg\.fn\.Twice:v2\/t$/m);
  });

  it('print prints the functions, and --filter only those the printed nodes call', async () => {
    const all = await cli('print', FUNCTIONS);
    expect(all.out.match(/^function \{/gm)).toHaveLength(4);
    expect(parseModel(all.out).functions).toHaveLength(4);
    const some = await cli('print', FUNCTIONS, '--filter', 'y');
    expect(some.out.match(/^function \{.*\}$/gm)).toEqual(['function {domain = "pkg.fn", overload = "v2", opset_import = {"" = 18, "pkg.fn" = 1}, doc = "doubles through the plain Twice", metadata = {"origin" = "make-functions-model.py"}}']);
  });
});
