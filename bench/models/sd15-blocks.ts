/** The 16 transformer blocks of SD1.5 with their channel counts. */
export const SD15_BLOCKS: { block: string; channels: number }[] = [
  ...[0, 1].map((a) => ({ block: `down_blocks.0.attentions.${a}.transformer_blocks.0`, channels: 320 })),
  ...[0, 1].map((a) => ({ block: `down_blocks.1.attentions.${a}.transformer_blocks.0`, channels: 640 })),
  ...[0, 1].map((a) => ({ block: `down_blocks.2.attentions.${a}.transformer_blocks.0`, channels: 1280 })),
  { block: 'mid_block.attentions.0.transformer_blocks.0', channels: 1280 },
  ...[0, 1, 2].map((a) => ({ block: `up_blocks.1.attentions.${a}.transformer_blocks.0`, channels: 1280 })),
  ...[0, 1, 2].map((a) => ({ block: `up_blocks.2.attentions.${a}.transformer_blocks.0`, channels: 640 })),
  ...[0, 1, 2].map((a) => ({ block: `up_blocks.3.attentions.${a}.transformer_blocks.0`, channels: 320 })),
];
