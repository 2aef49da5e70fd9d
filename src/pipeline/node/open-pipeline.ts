/** A pipeline folder on disk opened for running in onnxruntime-node (pipeline-folder.ts on a directory). */
import { type ModelOpener, type OpenedPipeline, openPipeline } from '../pipeline-folder.js';
import { type FolderFiles, openPipelineFolder } from './folder.js';
import { openOrtSession } from './ort-session.js';

export function openPipelineDir(dir: string): Promise<OpenedPipeline<FolderFiles>> {
  return openPipeline(openPipelineFolder(dir));
}

/** Opens the folder's models in onnxruntime-node (CPU), each named by its path in the folder. */
export function ortOpener(files: FolderFiles): ModelOpener {
  return (file) => openOrtSession(file, files.absolute(file));
}
