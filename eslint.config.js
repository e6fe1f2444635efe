// @ts-check
// npm run lint: ESLint's and typescript-eslint's recommended rules, without
// type information (tsc already type-checks every file, and a type-aware lint
// would cost a second full program per run). What stays here is what tsc
// does not catch: unused code, dead branches, suspicious constructs.
import js from '@eslint/js'
import { defineConfig, globalIgnores } from 'eslint/config'
import tseslint from 'typescript-eslint'

export default defineConfig(
  globalIgnores([
    '**/node_modules/',
    '**/dist/',
    'src/db/generated/',
    'coverage/',
    '.tap/',
    'data/',
    'bench/results/',
  ]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // tsc resolves every name, the browser's included (web/account is
      // checked with checkJs against the DOM library); ESLint's own check
      // knows neither Node's nor the browser's globals.
      'no-undef': 'off',
      // `_`-prefixed parameters and bindings are deliberately unused (a
      // callback's position, a rest sibling that drops a field).
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_',
        varsIgnorePattern: '^_',
        caughtErrorsIgnorePattern: '^_',
        destructuredArrayIgnorePattern: '^_',
        ignoreRestSiblings: true,
      }],
      // A stream or timer declared before the subscription whose callback
      // uses it, assigned once right after, stays a `let`: the callback reads
      // it "before" the assignment in source order.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // tsc checks this with types (noFallthroughCasesInSwitch in every
      // tsconfig) and knows a nested exhaustive switch returns; ESLint does not.
      'no-fallthrough': 'off',
    },
  },
  {
    files: ['test/**', 'packages/*/test/**'],
    rules: {
      // Patterns in tests copy the aligned columns of the command line's
      // output as printed ("\n  users", "Z  admin_read  cli").
      'no-regex-spaces': 'off',
    },
  },
)
