import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', '.keyway/**', '.nx/**', 'libs/proto/src/gen/**', '**/*.mjs'],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Packages are used through their public entry point only.
      'no-restricted-imports': [
        'error',
        // A package's declared entry points only (@keyway/testing/sso: the test IdPs and browser, kept out of the main entry).
        { patterns: [{ group: ['@keyway/*/src/*', '@keyway/*/*', '!@keyway/testing/sso'], message: 'Import the package entry point, not its files.' }] },
      ],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          banTransitiveDependencies: false,
          depConstraints: [
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:feature', 'type:core', 'type:generated', 'type:testing'] },
            { sourceTag: 'type:feature', onlyDependOnLibsWithTags: ['type:feature', 'type:core', 'type:generated', 'type:testing'] },
            { sourceTag: 'type:core', onlyDependOnLibsWithTags: ['type:core', 'type:generated', 'type:testing'] },
            { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:core', 'type:generated', 'type:feature'] },
            { sourceTag: 'type:generated', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:app', 'type:feature', 'type:core', 'type:generated', 'type:testing'] },
          ],
        },
      ],
    },
  },
);
