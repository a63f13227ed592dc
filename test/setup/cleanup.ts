// After each integration test file: delete the namespaces it created (createTestNamespace) and
// undo what it registered (undoAfterFile), so suites running side by side or later never meet
// another suite's leftovers. Declared before the file's own hooks, so this afterAll runs first,
// while the file's operator still runs and can release its finalizers.
import { afterAll } from '@jest/globals';
import { cleanUpAfterFile } from '../harness/kube.ts';

afterAll(() => cleanUpAfterFile(), 60_000);
