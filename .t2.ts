import { analyzeModel, writeAnalysisReport } from './src/analysis/analyze/index.js';
let peak = 0; setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 200).unref();
const t = performance.now();
const r = await analyzeModel('bench/cache/sd15-full/seed-20250101-v1/model.graph.onnx', { resolution: 512, samples: 2, stageBytes: 512 * 2 ** 20, onProgress: (d, tot, w) => console.log(((performance.now() - t) / 1000).toFixed(1), d.toFixed(2), tot, w, JSON.stringify(Object.fromEntries(Object.entries(process.memoryUsage()).map(([k,v])=>[k,Math.round(v/2**20)])))) });
console.log(writeAnalysisReport(r, '/tmp/an-full').length, ((performance.now() - t) / 1000).toFixed(1), peak / 2 ** 20);
for (const l of r.layers) console.log(l.name, l.height, l.check, l.locality?.smallestK.map((s) => s.k));
