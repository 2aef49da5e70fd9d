/**
 * Golden graphs of the rewritten region of one SD1.5 block and one PixArt block:
 * the converted model printed as textual IR, limited to the nodes of that block's
 * attn1 replacement and its neighbours, must equal test/golden/converted/*.golden.txt
 * (UPDATE_GOLDEN=1 rewrites them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printModel } from '../../src/ir/text/printer.js';
import { loadModel } from '../../src/onnx/load.js';
import { GOLDEN_DIR } from '../golden/golden.js';
import { MODELS_DIR } from '../helpers/paths.js';

const CASES = [
  {
    golden: 'sd15-mini.down_blocks.0.attentions.0.attn1.golden.txt',
    model: 'sd15-mini',
    emit: 'standard' as const,
    filter: [
      '/m/down_blocks.0/attentions.0/transformer_blocks.0/norm1/',
      'down_blocks.0.attentions.0.transformer_blocks.0.attn1/',
      '/m/down_blocks.0/attentions.0/transformer_blocks.0/Add',
    ],
  },
  {
    golden: 'pixart-mini.transformer_blocks.1.attn1.fused.golden.txt',
    model: 'pixart-mini',
    emit: 'fused' as const,
    filter: ['/m/transformer_blocks.1/Add_3', 'transformer_blocks.1.attn1/', '/m/transformer_blocks.1/Mul_7'],
  },
  {
    golden: 'pixart-mini.transformer_blocks.1.attn1.golden.txt',
    model: 'pixart-mini',
    emit: 'standard' as const,
    filter: ['/m/transformer_blocks.1/Add_3', 'transformer_blocks.1.attn1/', '/m/transformer_blocks.1/Mul_7'],
  },
];

describe('golden graphs of converted regions', () => {
  for (const c of CASES) {
    it(c.golden, () => {
      const dir = path.join(MODELS_DIR, c.model);
      const model = loadModel(path.join(dir, 'model.onnx'));
      convert(model, { weights: path.join(dir, 'delta.safetensors'), emit: c.emit });
      runInference(model, { apply: true });
      const actual = `${printModel(model, { filter: c.filter })}\n`;
      // the region is valid textual IR that reads back to itself
      expect(`${printModel(parseModel(actual))}\n`).toBe(actual);
      const file = path.join(GOLDEN_DIR, 'converted', c.golden);
      if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, actual);
      expect(fs.existsSync(file), `${file} is missing: run UPDATE_GOLDEN=1 npx vitest run test/convert`).toBe(true);
      expect(actual).toBe(fs.readFileSync(file, 'utf8'));
    });
  }
});
