// Lint is part of `npm test`. Beyond the usual TypeScript hygiene it enforces the two
// structural rules of DESIGN.md 2: the firmware is pure (it reaches the world only through its
// ports), and dependencies point one way, firmware <- host <- hil.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const onlyBan = (names, why) =>
  names.map((name) => ({ object: name.split('.')[0], property: name.split('.')[1], message: why }));

const focusBan = onlyBan(
  ['describe.only', 'it.only', 'test.only', 'suite.only', 'bench.only'],
  'A focused test hides every other test; remove `.only` before committing.',
);

export default tseslint.config(
  { ignores: ['node_modules/**', 'coverage/**', 'dist/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-properties': ['error', ...focusBan],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['firmware/**/*.ts'],
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
      'no-restricted-properties': ['error', ...focusBan,
        { object: 'Math', property: 'random', message: 'firmware/ is pure: use the Random port.' },
        { object: 'globalThis', message: 'firmware/ is pure: no ambient globals.' },
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
