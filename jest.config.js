// Jest runs TypeScript as native ESM (the Kubernetes client is ESM-only), transformed by SWC.
// Type checking is `npm run typecheck`, not the test transform.
//
// Two projects: `unit` (pure logic beside the code in src/) and `integration` (test/, against
// the real control plane and registry that the global setup starts once per run).
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
      module: { type: 'es6' },
      sourceMaps: 'inline',
    },
  ],
};
const common = { testEnvironment: 'node', extensionsToTreatAsEsm: ['.ts'], transform };

/** @type {import('jest').Config} */
export default {
  testTimeout: 120_000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/hack/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/setup/cleanup.ts'],
      slowTestThreshold: 60,
    },
  ],
};
