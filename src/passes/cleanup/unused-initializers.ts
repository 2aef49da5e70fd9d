/** Removes initializers nothing reads (e.g. the projection weights of replaced attention). */
import type { Pass } from '../pass-manager.js';

export interface UnusedInitializersData {
  removed: { name: string; bytes: number }[];
}

export const unusedInitializersPass: Pass = {
  name: 'remove-unused-initializers',
  description: 'remove initializers that no node reads',
  run(model) {
    const sizes = new Map([...model.graph.initializers.values()].map((v) => [v.name, v.initializer!.byteLength]));
    const names = model.graph.removeUnusedInitializers();
    const data: UnusedInitializersData = { removed: names.map((name) => ({ name, bytes: sizes.get(name) ?? 0 })) };
    return {
      changed: names.length > 0,
      diagnostics: [],
      stats: { removedInitializers: names.length, removedBytes: data.removed.reduce((a, r) => a + r.bytes, 0) },
      data,
    };
  },
};
