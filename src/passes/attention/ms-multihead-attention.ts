/**
 * onnxruntime's `com.microsoft.MultiHeadAttention` (transformer optimizer output):
 * query/key/value from separate projections (bias as input 3), a packed QKV
 * tensor [B, N, heads, 3, d] in `query` with key and value omitted (self-attention,
 * enable_packed_qkv), or a packed KV tensor [B, L, heads, 2, d] in `key` with
 * value omitted (cross-attention, enable_packed_kv).
 */
import { type AttentionCore, type AttentionPattern, fusedScale } from './match.js';

export const msMultiHeadAttention: AttentionPattern = {
  name: 'ms-multihead-attention',
  description: 'com.microsoft.MultiHeadAttention (separate or packed QKV)',
  anchor: (node) => node.opType === 'MultiHeadAttention' && node.domain === 'com.microsoft',
  match(node): AttentionCore | null {
    const [q, k, v] = node.inputs;
    if (!q) return null;
    const heads = node.getInt('num_heads');
    const scale = fusedScale(node, !!(node.inputs[4] || node.inputs[5]) /* key_padding_mask, attention_bias */);
    // Packed QKV: key/value omitted; all three come from the query tensor.
    if (!k && !v) return { q, k: q, v: q, output: node.outputs[0]!, nodes: [node], heads, scale };
    if (k && !v) return { q, k, v: k, output: node.outputs[0]!, nodes: [node], heads, scale };
    if (!k || !v) return null;
    return { q, k, v, output: node.outputs[0]!, nodes: [node], heads, scale };
  },
};
