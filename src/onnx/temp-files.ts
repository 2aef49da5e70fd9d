/**
 * Temp files of a save: `<file>.tmp-<pid>-<time in base 36>` next to the model and
 * its data file, renamed into place when everything is written. A save that is
 * killed (SIGKILL, a power cut) leaves them behind; the next save to the same
 * output removes those whose process no longer runs.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The suffix of this process's temp files for one save. */
export function tempTag(): string {
  return `.tmp-${process.pid}-${Date.now().toString(36)}`;
}

export interface StaleTempFile {
  path: string;
  bytes: number;
  /** The process that wrote it (no longer running). */
  pid: number;
}

/** Whether a process with this id runs (EPERM: it does, as another user). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Removes the temp files in `dir` of saves to the files `names` (the model and its
 * data file) whose process is gone; returns what it removed. Only plain files are
 * touched, and never those of a process that still runs (another save in progress,
 * or this one).
 */
export function removeStaleTempFiles(dir: string, names: string[]): StaleTempFile[] {
  const pattern = new RegExp(`^(?:${names.map(escape).join('|')})\\.tmp-(\\d+)-[0-9a-z]+$`);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: StaleTempFile[] = [];
  for (const name of entries) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processRuns(pid)) continue;
    const file = path.join(dir, name);
    try {
      const st = fs.lstatSync(file);
      if (!st.isFile()) continue;
      fs.rmSync(file);
      removed.push({ path: file, bytes: st.size, pid });
    } catch {
      // gone already (another save cleaned it), or not ours to remove: leave it
    }
  }
  return removed;
}
