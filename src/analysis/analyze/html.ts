/** `index.html` of a `deltac analyze` report: the tables and the pictures, no scripts, no external resources. */
import { NO_FIT_RMS, OUTLIER_FACTOR, relativeText as rel } from '../../runtime/layer-fidelity.js';
import type { AnalysisReport, LayerAnalysis, LayerFidelity } from './analyze.js';
import { localityCells, MASS_THRESHOLDS, WINDOW_SIZES } from './maps.js';

/** File name of a layer's picture. */
export function layerPicture(index: number, layer: LayerAnalysis): string {
  return `layers/${String(index).padStart(2, '0')}-${layer.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (v: number | undefined) => (v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);
const sci = (v: number | null) => (v === null ? '–' : v.toExponential(1));
/** A fit verdict, marked when the layer does not fit. */
const fitCell = (f: LayerFidelity) => (f.fit === 'ok' ? 'ok' : `<b class="${f.fit}">${f.fit}</b>`);

function table(headers: string[], rows: string[][]): string {
  return `<table><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function renderIndexHtml(r: AnalysisReport, command?: string): string {
  const kHead = [...WINDOW_SIZES.map((k) => `${k}×${k}`), 'whole'];
  const levels = table(
    ['level H×W', 'layers', ...kHead, `recommended K (≥ ${r.recommendMass * 100}%)`, 'checkpoint K'],
    r.levels.map((l) => [
      `${l.height}×${l.width}`,
      String(l.layers.length),
      ...localityCells(l.locality).masses.map(pct),
      pct(l.locality?.whole),
      l.recommendedK === null ? '–' : `<b>${l.recommendedK}</b>`,
      l.checkpointK.length ? l.checkpointK.join(', ') : '–',
    ]),
  );
  const withBlock = r.layers.some((l) => l.fidelity);
  const layers = table(
    ['#', 'layer', 'H×W', 'heads', ...kHead, ...MASS_THRESHOLDS.map((f) => `K ${f * 100}%`), 'probs', 'TS vs ORT', 'ΔConv K', ...(withBlock ? ['ΔConv err rms', 'err max', 'fit'] : [])],
    r.layers.map((l, i) => [
      String(i),
      `<a href="#layer-${i}">${esc(l.name)}</a>`,
      `${l.height}×${l.width}`,
      String(l.heads ?? '?'),
      ...localityCells(l.locality).masses.map(pct),
      pct(l.locality?.whole),
      ...localityCells(l.locality).smallestK.map((k) => String(k ?? '–')),
      l.probsSource,
      sci(l.check.output),
      l.checkpoint ? String(l.checkpoint.kernel) : '–',
      ...(withBlock ? (l.fidelity ? [rel(l.fidelity.rms), rel(l.fidelity.rel), fitCell(l.fidelity)] : ['–', '–', '–']) : []),
    ]),
  );
  // every captured sample: one column per input set and batch item
  const judged = r.layers.filter((l) => l.fidelity);
  const samples = judged[0]?.fidelity!.samples ?? [];
  const fidelity = judged.length
    ? table(
        ['#', 'layer', 'H×W', 'gate', 'scales', ...samples.map((s) => `${esc(s.input)} [${s.item}]<br><small>rms / max</small>`), 'fit'],
        judged.map((l) => [
          String(r.layers.indexOf(l)),
          `<a href="#layer-${r.layers.indexOf(l)}">${esc(l.name)}</a>`,
          `${l.height}×${l.width}`,
          l.checkpoint!.gate,
          l.checkpoint!.scales.join(', '),
          ...l.fidelity!.samples.map((s) => `${rel(s.rms)} / ${rel(s.rel)}`),
          fitCell(l.fidelity!),
        ]),
      )
    : '';
  const sections = r.layers
    .map(
      (l, i) => `<section id="layer-${i}"><h3>${i}. ${esc(l.name)} <small>${l.height}×${l.width} tokens, C = ${l.channels ?? '?'}, ${l.heads ?? '?'} heads</small></h3>
<img src="${esc(layerPicture(i, l))}" alt="${esc(l.name)}: attention map, attention ERF${l.blockErf ? ', ΔConvBlock ERF' : ''}">
${l.notes.length ? `<ul>${l.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deltac analyze — ${esc(r.model)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}p{max-width:70em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}td:nth-child(2),th:nth-child(2){text-align:left}
th{background:#f3f3f3}img{image-rendering:pixelated;max-width:100%}code{background:#f3f3f3;padding:1px 4px}
small{color:#666;font-weight:normal}.poor,.outlier{color:#fff;padding:0 4px}.poor{background:#c0392b}.outlier{background:#d68910}
</style></head><body>
<h1>deltac analyze</h1>
<p>Model <code>${esc(r.model)}</code>, ${esc(r.inputs)}; ${r.queriesPerLayer} sampled query positions per layer (seed ${r.seed})${r.weights ? `; ΔConvBlocks from <code>${esc(r.weights)}</code>` : ''}; ${r.seconds.toFixed(1)} s.</p>
${command ? `<p><code>${esc(command)}</code></p>` : ''}
${r.notes.length ? `<ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>Locality and K per resolution level</h2>
<p>Share of the attention mass inside the K×K window around the query (mean map of the level's layers). Recommended K: the smallest odd K whose window holds ≥ ${r.recommendMass * 100}% of the mass.</p>
${levels}
<h2>Layers</h2>
<p>“probs”: captured from the model's Softmax (a Gather of the sampled query rows) or recomputed from its weights. “TS vs ORT”: max|Δ|/max|y| between the attention output recomputed in TypeScript from the model's weights (the basis of the ERF) and onnxruntime's, at the sampled rows.</p>
${layers}
${
  fidelity
    ? `<h2>How faithful each ΔConvBlock is</h2>
<p>The layer's ΔConvBlock (deltac's CPU reference, bound as <code>deltac convert</code> binds the checkpoint) against the attention module's output as onnxruntime computed it, on the same captured input tokens, for every captured sample:
<b>rms</b> = ‖Δ‖<sub>2</sub> / ‖attn‖<sub>2</sub> over every token and channel, <b>max</b> = max|Δ| / max|attn|; the Layers table shows the worst sample.
A layer is <b class="poor">poor</b> when rms ≥ ${NO_FIT_RMS} (the block is no closer to the attention than dropping the layer would be) and an <b class="outlier">outlier</b> when its rms is ≥ ${OUTLIER_FACTOR}× the median of the layers here.</p>
${fidelity}`
    : ''
}
<h2>Pictures</h2>
<p>Each layer, left to right: the <b>centroid-aligned attention map</b> ((2H−1)×(2W−1): every sampled query's attention shifted so the query sits at the centre, averaged over queries, heads and inputs),
the <b>effective receptive field of the attention</b> (|∂ Σ<sub>c</sub> y<sub>c</sub>(centre) / ∂x| summed over input channels, H×W, exact vector–Jacobian product, averaged over the ${r.layers[0]?.erfSamples ?? 0} captured sample(s): every input set, every batch item),
and${r.weights ? '' : ' (with <code>--weights</code>)'} the same for the <b>ΔConvBlock</b> of the layer. Colour map inferno; each panel scaled to its own maximum.</p>
<p>All layers, four per row, in the order of the table:</p>
<img src="overview.png" alt="all layers">
${sections}
</body></html>
`;
}
