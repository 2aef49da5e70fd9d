/** CPU references of the ΔConvBlock and its fused pyramid conv (the oracle every kernel is tested against). */
export * from './pyramid-conv.js';
export * from './delta-conv-block.js';
