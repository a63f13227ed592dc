// Whether a Docker engine is reachable, asked through testcontainers (which knows DOCKER_HOST,
// ~/.testcontainers.properties, Docker Desktop, rootless and Podman sockets).
import { getContainerRuntimeClient } from 'testcontainers';

export type DockerAvailability =
  { available: true; description: string } | { available: false; reason: string };

export async function dockerAvailability(): Promise<DockerAvailability> {
  try {
    const client = await getContainerRuntimeClient();
    const info = client.info.containerRuntime;
    return { available: true, description: `${info.host} (${info.operatingSystem}, ${info.architecture})` };
  } catch (err) {
    return { available: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
