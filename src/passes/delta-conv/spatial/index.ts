export { findSpatialSource, spatialIndex, type ModelFamily, type SpatialIndex, type SpatialSource } from './source.js';
export { emitHW } from './emit-hw.js';
