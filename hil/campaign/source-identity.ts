import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Which mirrorlab this process is, as far as a run's result goes. Two processes with the same
 * `sourceHash` give the same result for the same seed and settings; the package version alone
 * says nothing about a checkout with local edits, so workers compare the hash (docs/queue.md 3).
 */
export interface SourceIdentity {
  version: string;
  /** SHA-256 (hex) over the files that decide a run's result; see {@link RESULT_DIRS}. */
  sourceHash: string;
}

/** The folders whose files decide what a run does and what the campaign protocol carries. */
export const RESULT_DIRS = ['firmware', 'host', 'hil'] as const;
/** Under those, what only presents or stores results, and cannot change one. */
export const PRESENTATION_DIRS = ['hil/cli', 'hil/bench', 'hil/history'] as const;
/** Packages whose code runs inside a run; their installed versions are part of the hash. */
export const RESULT_PACKAGES = ['xstate', '@node-rs/crc32'] as const;
/** Files hashed, at most: the tree has a few hundred; far more means a wrong root. */
export const SOURCE_FILES_MAX = 10_000;

const SOURCE_EXTENSIONS = /\.(ts|mts|cts|js|mjs|cjs|json)$/;

/** The checkout this module is part of. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

let mine: Promise<SourceIdentity> | null = null;

/** This process's identity (computed once). */
export function sourceIdentity(): Promise<SourceIdentity> {
  mine ??= computeIdentity(REPO_ROOT);
  return mine;
}

/**
 * Hashes the sources under `root`: every file under {@link RESULT_DIRS} but not under
 * {@link PRESENTATION_DIRS}, by path and content in path order, then the package version and the
 * installed versions of {@link RESULT_PACKAGES}. Paths use `/` whatever the platform.
 */
export async function computeIdentity(root: string): Promise<SourceIdentity> {
  const files: string[] = [];
  for (const dir of RESULT_DIRS) await collect(root, join(root, dir), files);
  files.sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(await readFile(join(root, file)));
    hash.update('\0');
  }
  const version = await packageVersion(root);
  hash.update(`mirrorlab@${version}\0`);
  for (const name of RESULT_PACKAGES) hash.update(`${name}@${await packageVersion(join(root, 'node_modules', name))}\0`);
  return { version, sourceHash: hash.digest('hex') };
}

async function collect(root: string, dir: string, into: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const rel = relative(root, path).split(sep).join('/');
    if ((PRESENTATION_DIRS as readonly string[]).includes(rel)) continue;
    if (entry.isDirectory()) await collect(root, path, into);
    else if (entry.isFile() && SOURCE_EXTENSIONS.test(entry.name)) {
      if (into.length >= SOURCE_FILES_MAX) throw new Error(`more than ${SOURCE_FILES_MAX} source files under ${root}: not a mirrorlab checkout?`);
      into.push(rel);
    }
  }
}

async function packageVersion(dir: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'missing';
  }
}

/** How long `git` may take to name the commit before it counts as unknown (real time, ms). */
export const GIT_MS_MAX = 2_000;

/** The checkout's commit (with `+dirty` when result-deciding files differ from it), or null when unknown. */
export async function gitCommit(root = REPO_ROOT): Promise<string | null> {
  const git = (args: string[]): Promise<string | null> => new Promise((resolve) => {
    execFile('git', ['-C', root, ...args], { timeout: GIT_MS_MAX, maxBuffer: 1 << 20 }, (err, stdout) => resolve(err ? null : stdout.trim()));
  });
  const head = await git(['rev-parse', 'HEAD']);
  if (head === null || !/^[0-9a-f]{40}$/.test(head)) return null;
  const dirty = await git(['status', '--porcelain', '--', ...RESULT_DIRS]);
  return dirty === null || dirty === '' ? head : `${head}+dirty`;
}

/** A hash as people read it: the first 12 hex digits. */
export const shortHash = (hash: string): string => hash.slice(0, 12);
