/**
 * onnxruntime's `com.microsoft.Attention`: the op projects its input itself with a
 * packed [C, 3·hidden] weight, so it is self-attention by construction (unless a
 * separate key input is given).
 */
import { type AttentionCore, type AttentionPattern, fusedScale } from './match.js';

export const msAttention: AttentionPattern = {
  name: 'ms-attention',
  description: 'com.microsoft.Attention with packed QKV weights',
  anchor: (node) => node.opType === 'Attention' && node.domain === 'com.microsoft',
  match(node): AttentionCore | null {
    const x = node.inputs[0];
    if (!x || node.inputs[6] /* past */) return null;
    const scale = fusedScale(node, !!(node.inputs[3] || node.inputs[5]) /* mask_index, attention_bias */);
    return { q: null, k: null, v: null, fusedInput: x, output: node.outputs[0]!, nodes: [node], heads: node.getInt('num_heads'), scale };
  },
};
