// berth's entry point: one image, several subcommands.
const usage = `usage: berth <command>

commands:
  operator        run the operator (controllers, health and metrics)
  version         print the version`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'version':
      console.log('berth 0.1.0');
      return 0;
    case undefined:
    case '-h':
    case '--help':
      console.log(usage);
      return command === undefined ? 2 : 0;
    default:
      console.error(`berth: unknown command "${command}"\n${usage}`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
