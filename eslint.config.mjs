import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const TEST_FILES = ['**/*.spec.ts', '**/*.test.ts'];

/** Which project tags may import which: the architecture's boundaries as a lint error. */
const depConstraints = (forTests) => [
  {
    sourceTag: 'type:app',
    onlyDependOnLibsWithTags: [
      'type:contract',
      'type:infra',
      ...(forTests ? ['type:testing', 'type:sdk'] : []),
    ],
  },
  {
    sourceTag: 'type:contract',
    onlyDependOnLibsWithTags: ['type:contract', ...(forTests ? ['type:testing'] : [])],
    bannedExternalImports: ['@nestjs/*', 'typeorm', 'pg', 'nats', 'express', 'ws'],
  },
  {
    sourceTag: 'type:infra',
    onlyDependOnLibsWithTags: ['type:contract', 'type:infra', ...(forTests ? ['type:testing'] : [])],
  },
  {
    sourceTag: 'type:sdk',
    onlyDependOnLibsWithTags: ['type:contract', 'type:sdk', ...(forTests ? ['type:testing'] : [])],
    bannedExternalImports: ['@nestjs/*', 'typeorm', 'pg'],
  },
  {
    sourceTag: 'type:testing',
    onlyDependOnLibsWithTags: ['type:contract', 'type:infra', 'type:testing', 'type:sdk'],
  },
  { sourceTag: 'type:cli', onlyDependOnLibsWithTags: ['type:contract', 'type:sdk'] },
  {
    sourceTag: 'type:e2e',
    onlyDependOnLibsWithTags: ['type:contract', 'type:infra', 'type:testing', 'type:sdk'],
  },
];
const boundaries = (forTests) => [
  'error',
  { enforceBuildableLibDependency: false, allow: [], depConstraints: depConstraints(forTests) },
];

export default [
  {
    ignores: [
      '**/__fixtures__/**',
      '**/node_modules/**',
      '**/dist/**',
      '.data/**',
      '.nx/**',
      'coverage/**',
      'docs/**',
      'deploy/**',
    ],
  },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    rules: {
      // Apps never import apps; contracts stay free of NestJS/TypeORM; infra never reaches into apps.
      '@nx/enforce-module-boundaries': boundaries(false),
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'error',
    },
  },
  {
    // Tests may import the testing lib and the app under test; they are not shipped.
    files: TEST_FILES,
    rules: { 'no-console': 'off', '@nx/enforce-module-boundaries': boundaries(true) },
  },
  ...tseslint.config({ files: ['**/*.mjs', '**/*.js'], rules: {} }),
  prettier,
];
