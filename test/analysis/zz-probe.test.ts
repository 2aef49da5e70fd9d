import { it } from 'vitest';
import { ATTENTION_STYLES, buildExport } from '../../test/fixtures/exports/index.js';
import { findLayers } from '../../src/analysis/analyze/layers.js';
import { attentionParams } from '../../src/analysis/analyze/projections.js';
import { randomInputs } from '../../src/analysis/analyze/inputs.js';
it('probe', () => {
  for (const style of ATTENTION_STYLES) {
    const built = buildExport({ layout: 'sd15', style });
    const plan = randomInputs(built.model, built.options.staticShapes ? null : 96, 1, 0);
    const f = findLayers(built.model, plan.bindings);
    const l = f.layers[0]!;
    const pr = attentionParams(l.match, f.ctx);
    console.log(style, l.match.pattern, 'params' in pr ? 'OK' : pr.reason);
  }
});
