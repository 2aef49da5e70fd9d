/** Module paths from node names (TorchScript) and from dynamo's `pkg.torch.onnx.name_scopes` metadata. */
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/ir/graph.js';
import type { Node } from '../../src/ir/node.js';
import { modulePaths } from '../../src/passes/attention/match.js';

function node(name: string, scopes?: string[]): Node {
  const g = new Graph();
  const n = g.addNode('MatMul', [], { name });
  if (scopes) n.metadataProps.push(['pkg.torch.onnx.name_scopes', `[${scopes.map((s) => `'${s}'`).join(', ')}]`]);
  return n;
}

describe('modulePaths', () => {
  it('reads TorchScript names under any wrapper', () => {
    for (const wrapper of ['/m', '/unet', '/model/diffusion_model', '']) {
      expect(modulePaths([node(`${wrapper}/down_blocks.0/attentions.1/transformer_blocks.1/attn1/to_q/MatMul`)])).toEqual({
        module: 'down_blocks.0.attentions.1.transformer_blocks.1.attn1',
        block: 'down_blocks.0.attentions.1.transformer_blocks.1',
      });
    }
  });

  it('takes the innermost module of dynamo name scopes, not the node\'s own name that ends the list', () => {
    // The node's fx name is longer than the module path here: it must not be taken for a module.
    const core = node('node_Softmax_7', ['', 'transformer_blocks.0', 'transformer_blocks.0.attn1', 'scaled_dot_product_attention_12']);
    expect(modulePaths([core])).toEqual({ module: 'transformer_blocks.0.attn1', block: 'transformer_blocks.0' });
    const proj = node('node_MatMul_3', ['', 'mid_block', 'mid_block.attentions.0', 'mid_block.attentions.0.transformer_blocks.0', 'mid_block.attentions.0.transformer_blocks.0.attn1', 'mid_block.attentions.0.transformer_blocks.0.attn1.to_q', 'linear_3']);
    expect(modulePaths([proj])).toEqual({ module: 'mid_block.attentions.0.transformer_blocks.0.attn1', block: 'mid_block.attentions.0.transformer_blocks.0' });
  });

  it('reads CompVis/LDM names: TorchScript scopes a Sequential\'s children by their index path (input_blocks.1 → input_blocks.1.1, to_out → to_out.0)', () => {
    expect(modulePaths([node('/model/diffusion_model/input_blocks.1/input_blocks.1.1/transformer_blocks.0/attn1/to_q/MatMul')])).toEqual({
      module: 'input_blocks.1.1.transformer_blocks.0.attn1',
      block: 'input_blocks.1.1.transformer_blocks.0',
    });
    expect(modulePaths([node('/m/model/diffusion_model/middle_block/middle_block.1/transformer_blocks.0/attn1/to_out/to_out.0/MatMul')])).toEqual({
      module: 'middle_block.1.transformer_blocks.0.attn1',
      block: 'middle_block.1.transformer_blocks.0',
    });
    expect(modulePaths([node('/output_blocks.11/output_blocks.11.1/transformer_blocks.0/attn2/to_k/MatMul')]).module).toBe('output_blocks.11.1.transformer_blocks.0.attn2');
    // dynamo scopes are fully qualified already
    const dyn = node('node_MatMul_9', ['', 'model.diffusion_model.output_blocks.5', 'model.diffusion_model.output_blocks.5.1', 'model.diffusion_model.output_blocks.5.1.transformer_blocks.1.attn1', 'linear_9']);
    expect(modulePaths([dyn])).toEqual({ module: 'output_blocks.5.1.transformer_blocks.1.attn1', block: 'output_blocks.5.1.transformer_blocks.1' });
  });

  it('skips nodes without a path and reports nothing when no node has one', () => {
    const named = node('/m/transformer_blocks.3/attn1/to_out.0/MatMul');
    expect(modulePaths([node('Attention_0'), node('node_Add_1', ['', 'linear']), named]).module).toBe('transformer_blocks.3.attn1');
    expect(modulePaths([node('MatMul_QKV_0'), node('')])).toEqual({ module: null, block: null });
  });
});
