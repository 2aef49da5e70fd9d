/**
 * The ONNX `Attention` operator (opset 23; dynamo exports of
 * scaled_dot_product_attention): inputs Q, K, V as [B, S, hidden] with
 * q_num_heads/kv_num_heads, or as [B, heads, S, head_dim].
 */
import { type AttentionCore, type AttentionPattern, fusedScale } from './match.js';

export const onnxAttention: AttentionPattern = {
  name: 'onnx-attention',
  description: 'ONNX Attention (opset 23) fed by MatMul projections',
  anchor: (node) => node.opType === 'Attention' && (node.domain === '' || node.domain === 'ai.onnx'),
  match(node): AttentionCore | null {
    const [q, k, v] = node.inputs;
    if (!q || !k || !v) return null;
    return { q, k, v, output: node.outputs[0]!, nodes: [node], heads: node.getInt('q_num_heads'), scale: fusedScale(node, !!node.inputs[3] /* attn_mask */) };
  },
};
