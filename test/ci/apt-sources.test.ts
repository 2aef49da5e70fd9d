/**
 * .ci/run adds Debian bookworm-backports with the URI of the Debian source the machine
 * already has (deb822 or one-line apt sources) and names no package server itself.
 * Runs only the script's pure `backports-source` mode on files written here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT } from '../helpers/paths.js';

const SCRIPT = path.join(REPO_ROOT, '.ci', 'run');
const { dir, cleanup } = makeTempDir('deltac-apt-');
afterAll(cleanup);

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const backports = (...files: string[]) => execFileSync('bash', [SCRIPT, 'backports-source', ...files], { encoding: 'utf8' });

describe('.ci/run backports source', () => {
  it('takes the URI of the deb822 stanza that serves bookworm, not -security', () => {
    const security = write('security.sources', 'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n');
    const debian = write(
      'debian.sources',
      'Types: deb\n# http://snapshot.example/archive/debian/20250520T000000Z\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
    expect(backports(security, debian)).toBe(
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
  });

  it('reads one-line sources, with or without [options]', () => {
    const list = write('sources.list', '# deb http://commented.example/debian bookworm main\ndeb http://other.example/debian-security bookworm-security main\ndeb [arch=amd64 signed-by=/k.gpg] http://one-line.example/debian bookworm main contrib\n');
    expect(backports(list)).toContain('URIs: http://one-line.example/debian\n');
    expect(backports(write('plain.list', 'deb https://plain.example/debian/ bookworm main\n'))).toContain('URIs: https://plain.example/debian/\n');
  });

  it('fails with a message when no source serves bookworm', () => {
    const r = spawnSync('bash', [SCRIPT, 'backports-source', write('only-security.list', 'deb http://s.example/debian-security bookworm-security main\n')], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no apt source for Debian bookworm/);
  });

  it('names no host', () => {
    const text = fs.readFileSync(SCRIPT, 'utf8');
    expect(text.match(/[a-z0-9-]+(\.[a-z0-9-]+)*\.(org|com|net|io|dev)\b/gi)).toBeNull();
  });
});
