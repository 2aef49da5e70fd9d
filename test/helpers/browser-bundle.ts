/**
 * `entry` (export lines of repository sources) bundled by esbuild for the browser, as
 * the web page bundles it, and imported here: the bundle's text and its module.
 */
import { build } from 'esbuild';
import { REPO_ROOT } from './paths.js';

export async function importBrowserBundle(entry: string): Promise<{ code: string; mod: Record<string, any> }> {
  const result = await build({
    stdin: { contents: entry, resolveDir: REPO_ROOT, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.text;
  return { code, mod: await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`) };
}
