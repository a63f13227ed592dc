// Reads a docker-archive (the `docker save` format that hack/images.sh writes): the names it
// carries, the image config, and the files of its layers, without any container tool.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface ImageConfig {
  User?: string;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  Labels?: Record<string, string>;
}

export interface DockerArchive {
  repoTags: string[];
  config: ImageConfig;
  /** The extracted layer tarballs, lowest first. */
  layers: string[];
  /** Every path in the layers (without a leading ./ or /), directories with a trailing /. */
  files(): Promise<Set<string>>;
}

interface ManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** Extracts the archive into dir and reads its one image. */
export async function openDockerArchive(file: string, dir: string): Promise<DockerArchive> {
  mkdirSync(dir, { recursive: true });
  await exec('tar', ['-xf', file, '-C', dir]);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as ManifestEntry[];
  if (manifest.length !== 1) throw new Error(`${file}: ${manifest.length} images, expected one`);
  const entry = manifest[0]!;
  const config = (JSON.parse(readFileSync(path.join(dir, entry.Config), 'utf8')) as { config: ImageConfig })
    .config;
  const layers = entry.Layers.map((l) => path.join(dir, l));
  let files: Set<string> | undefined;
  return {
    repoTags: entry.RepoTags ?? [],
    config,
    layers,
    files: async () => {
      if (files) return files;
      files = new Set();
      for (const layer of layers) {
        const { stdout } = await exec('tar', ['-tf', layer], { maxBuffer: 256 * 1024 * 1024 });
        for (const line of stdout.split('\n')) if (line) files.add(line.replace(/^\.?\//, ''));
      }
      return files;
    },
  };
}
