// Lint is part of `npm test`. Beyond the usual TypeScript hygiene it enforces the two
// structural rules of DESIGN.md 2: the firmware is pure (it reaches the world only through its
// ports), and dependencies point one way, firmware <- host <- hil.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// `.only` focuses a test and hides every other one. It hides behind modifiers and builders too
// (`it.concurrent.only`, `describe.sequential.only`, `it.fails.only`, `it.skipIf(x).only`,
// `it.each(t).only`, `test.extend(f).only`), so the ban is on any `.only` taken from an
// expression that mentions a test function anywhere in its chain, at any depth (esquery `:has`),
// written `.only` or `['only']`. It runs everywhere; in test files, calling anything's `.only(...)`
// is banned as well, which catches a renamed test function (`const t = test.extend(f); t.only(...)`).
const FOCUS_MESSAGE = 'A focused test hides every other test; remove `.only` before committing.';
const TEST_FUNCTIONS = '/^(describe|it|test|suite|bench)$/';
const focusBan = [
  `MemberExpression[computed=false][property.name="only"]:has(Identifier[name=${TEST_FUNCTIONS}])`,
  `MemberExpression[computed=true][property.value="only"]:has(Identifier[name=${TEST_FUNCTIONS}])`,
].map((selector) => ({ selector, message: FOCUS_MESSAGE }));
const focusCallBan = [
  'CallExpression > MemberExpression.callee[computed=false][property.name="only"]',
  'TaggedTemplateExpression > MemberExpression.tag[computed=false][property.name="only"]',
].map((selector) => ({ selector, message: FOCUS_MESSAGE }));

// Every source extension ESLint may be handed; the firmware's purity holds for all of them.
const FIRMWARE_FILES = ['firmware/**/*.{ts,mts,cts,js,mjs,cjs}'];
const TEST_FILES = ['test/**/*.{ts,mts,cts,js,mjs,cjs}', '**/*.{test,spec}.{ts,mts,cts,js,mjs,cjs}'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'coverage/**', 'dist/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', ...focusBan],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: TEST_FILES,
    rules: {
      'no-restricted-syntax': ['error', ...focusBan, ...focusCallBan],
    },
  },
  {
    files: FIRMWARE_FILES,
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*'], message: 'firmware/ is pure: reach the world through a port (DESIGN.md 2.1).' },
          { group: ['**/host/**', '**/hil/**'], message: 'Layering: firmware <- host <- hil. firmware imports only firmware.' },
          { regex: '^(?!xstate$|@node-rs/crc32$|\\.)', message: 'firmware/ may import only firmware/ and pure packages (xstate, @node-rs/crc32).' },
        ],
      }],
      'no-restricted-globals': ['error',
        ...['Date', 'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'setImmediate', 'performance', 'process', 'queueMicrotask', 'require']
          .map((name) => ({ name, message: `firmware/ is pure: ${name} is not allowed; use the Clock/Random ports (DESIGN.md 2.1).` })),
      ],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'firmware/ is pure: use the Random port.' },
        { object: 'globalThis', message: 'firmware/ is pure: no ambient globals.' },
      ],
      // A dynamic import() would load `node:fs` (or anything) past no-restricted-imports, and its
      // specifier may be computed, so firmware/ has none at all: everything it uses is imported
      // statically, where the import rules above can see it.
      'no-restricted-syntax': ['error', ...focusBan,
        { selector: 'ImportExpression', message: 'firmware/ is pure: no dynamic import(); import firmware/ modules statically (DESIGN.md 2.1).' },
      ],
    },
  },
  {
    files: ['host/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['**/hil/**'], message: 'Layering: firmware <- host <- hil. host must not import hil.' }],
      }],
    },
  },
);
