/** `deltac analyze`: attention maps, locality and K, receptive fields of attention vs ΔConvBlock. */
export { analyzeModel, type AnalyzeOptions, type AnalysisReport, type LayerAnalysis, type LayerFidelity, type LevelAnalysis } from './analyze.js';
export { analysisJson, checkOutputFolder, writeAnalysisReport } from './write-report.js';
export { type Resolution } from './inputs.js';
export { WINDOW_SIZES, MASS_THRESHOLDS, RECOMMEND_MASS, localityCells } from './maps.js';
