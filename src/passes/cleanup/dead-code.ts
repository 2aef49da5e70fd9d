/** Dead-code elimination: removes nodes whose results nobody reads. */
import type { Pass } from '../pass-manager.js';

export const deadCodePass: Pass = {
  name: 'dce',
  description: 'remove nodes whose outputs are unused',
  run(model) {
    const removed = model.graph.removeDeadNodes();
    return { changed: removed > 0, diagnostics: [], stats: { removedNodes: removed } };
  },
};
