// Distribution's repository name grammar (distribution/reference): lowercase path components
// separated by `/`, each `[a-z0-9]+` joined by `.`, `_`, `__` or dashes; at most 255 characters.
const component = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const repositoryName = new RegExp(`^${component}(?:/${component})*$`);

export function isRepositoryName(name: string): boolean {
  return name.length <= 255 && repositoryName.test(name);
}
