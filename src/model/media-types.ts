// Media types berth reads in registry notifications and manifests.
/** Media types of blobs (layers and configs): their pushes say nothing about a tag. */
export const blobMediaTypes = [
  'application/octet-stream',
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.oci.empty.v1+json',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.container.image.v1+json',
] as const;
