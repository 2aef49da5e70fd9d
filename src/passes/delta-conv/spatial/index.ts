export { findSpatialSource, type ModelFamily, type SpatialSource } from './source.js';
export { emitHW } from './emit-hw.js';
