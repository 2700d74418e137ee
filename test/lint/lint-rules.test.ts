import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The lint rules that enforce docs/design.md's layering (firmware purity) and docs/conventions.md 10 (no
 * focused tests) must actually fire: each banned snippet below is linted as if it lived at the
 * given path, through the repository's own eslint.config.js, and must be reported by the rule
 * named; the clean snippets must not be.
 */
describe('lint rules', () => {
  let eslint: ESLint;
  beforeAll(() => {
    eslint = new ESLint({ cwd: root, overrideConfigFile: `${root}eslint.config.js` });
  });

  async function problems(code: string, filePath: string): Promise<{ ruleId: string | null; message: string }[]> {
    const [result] = await eslint.lintText(code, { filePath: `${root}${filePath}` });
    return result!.messages.map((m) => ({ ruleId: m.ruleId, message: m.message }));
  }

  const firmwareBans: [string, string, string][] = [
    ['a node: import', `import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n`, 'no-restricted-imports'],
    ['a bare builtin import', `import fs from 'fs';\nexport const f = fs;\n`, 'no-restricted-imports'],
    ['a dynamic import of node:fs', `export async function f() {\n  return import('node:fs');\n}\n`, 'no-restricted-syntax'],
    ['a dynamic import of a computed specifier', `export async function f(name: string) {\n  return import(name);\n}\n`, 'no-restricted-syntax'],
    ['Date', `export const now = () => Date.now();\n`, 'no-restricted-globals'],
    ['setTimeout', `export const later = (f: () => void) => setTimeout(f, 1);\n`, 'no-restricted-globals'],
    ['Math.random', `export const r = () => Math.random();\n`, 'no-restricted-properties'],
    ['performance', `export const t = () => performance.now();\n`, 'no-restricted-globals'],
    ['an import from host/', `import { VirtualClock } from '../host/clock/virtual.ts';\nexport const c = VirtualClock;\n`, 'no-restricted-imports'],
  ];
  const firmwareExtensions = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'];

  for (const ext of firmwareExtensions) {
    it.each(firmwareBans.filter(([, code]) => ext.endsWith('ts') || !code.includes(': ')))(`firmware/*.${ext}: %s is reported`, async (_name, code, rule) => {
      const found = await problems(code, `firmware/lint-probe.${ext}`);
      expect(found.map((p) => p.ruleId)).toContain(rule);
    });
  }

  it('firmware: clean code (static firmware imports, ports, xstate) is not reported', async () => {
    const code = `import { setup } from 'xstate';\nimport type { Clock } from './ports/clock.ts';\nexport const m = setup({});\nexport const at = (c: Clock) => c.now();\n`;
    expect(await problems(code, 'firmware/lint-probe.ts')).toEqual([]);
  });

  const focused: [string, string][] = [
    ['it.only', `it.only('x', () => {});`],
    ['describe.only', `describe.only('x', () => {});`],
    ['test.only', `test.only('x', () => {});`],
    ['suite.only', `suite.only('x', () => {});`],
    ['bench.only', `bench.only('x', () => {});`],
    ['it.concurrent.only', `it.concurrent.only('x', () => {});`],
    ['describe.concurrent.only', `describe.concurrent.only('x', () => {});`],
    ['describe.sequential.only', `describe.sequential.only('x', () => {});`],
    ['it.fails.only', `it.fails.only('x', () => {});`],
    ['it.skipIf(x).only', `it.skipIf(process.env.CI).only('x', () => {});`],
    ['it.runIf(x).only', `it.runIf(true).only('x', () => {});`],
    ['it.each(...).only', `it.each([1, 2]).only('x %s', () => {});`],
    ['it.only.each(...)', `it.only.each([1, 2])('x %s', () => {});`],
    ['test.extend(...).only', `test.extend({}).only('x', () => {});`],
    ['a renamed test.extend(...) then .only', `const myTest = test.extend({});\nmyTest.only('x', () => {});`],
    ["it['only']", `it['only']('x', () => {});`],
    ['describe.each(...).only with a template table', 'describe.each`\\n  a\\n  ${1}\\n`.only(\'x\', () => {});'],
  ];
  const header = `import { bench, describe, it, suite, test } from 'vitest';\nvoid bench; void describe; void it; void suite; void test;\n`;

  it.each(focused)('test file: %s is reported', async (_name, code) => {
    const found = await problems(`${header}${code}\n`, 'test/lint/probe.test.ts');
    expect(found.filter((p) => p.ruleId === 'no-restricted-syntax').map((p) => p.message)).toContainEqual(expect.stringMatching(/focused test/));
  });

  it.each(focused.filter(([name]) => !name.startsWith('a renamed')))('any source file: %s is reported', async (_name, code) => {
    const found = await problems(`${header}${code}\n`, 'hil/lint-probe.ts');
    expect(found.map((p) => p.ruleId)).toContain('no-restricted-syntax');
  });

  it('clean tests, and `.only` as an ordinary property, are not reported', async () => {
    const code = `${header}describe('x', () => {\n  it.concurrent.skip('y', () => {});\n  it.each([1])('z %s', () => {});\n  const doc = { only: 'disks' };\n  it('w', () => void doc.only);\n});\n`;
    expect(await problems(code, 'test/lint/probe.test.ts')).toEqual([]);
    expect(await problems(`export const flags = { only: 'mirror' };\nexport const pick = flags.only === 'disks';\n`, 'hil/lint-probe.ts')).toEqual([]);
  });
});
