// Jest global teardown: stops the control plane and removes its folder.
export default async function globalTeardown(): Promise<void> {
  await globalThis.__berthControlPlane?.stop({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' });
  globalThis.__berthControlPlane = undefined;
}
